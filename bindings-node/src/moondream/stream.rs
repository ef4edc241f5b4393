//! Streamed answers (`queryStream`, `captionStream`): each piece handed to `onChunk`, one
//! in flight, the next only once `onChunk` has returned.

use camkit::moondream::{CameraAnswer, TextStream};
use camkit::{Error, ErrorKind};
use futures::StreamExt;
use napi::bindgen_prelude::FromNapiValue;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;

use crate::delivery::{call_and_wait, Call};

/// Stream pieces waiting for the JS thread (one in flight).
const CHUNK_QUEUE: usize = 1;

/// `onChunk(text)` of a streamed answer: weak, bounded; its return value is read.
pub(super) type ChunkCallback =
    ThreadsafeFunction<String, ChunkReply, String, Status, false, true, CHUNK_QUEUE>;

/// What `onChunk` returned: `false` asks to stop; anything else goes on.
pub(super) struct ChunkReply {
    stop: bool,
}

impl FromNapiValue for ChunkReply {
    unsafe fn from_napi_value(
        env: napi::sys::napi_env,
        value: napi::sys::napi_value,
    ) -> napi::Result<Self> {
        // SAFETY: napi-rs hands over a live value of the current scope on the JS thread;
        // reading a non-boolean as a boolean fails without throwing.
        let b = unsafe { bool::from_napi_value(env, value) };
        Ok(ChunkReply {
            stop: matches!(b, Ok(false)),
        })
    }
}

/// Reads a streamed answer, handing each piece to `onChunk`: the whole text, or what
/// `onChunk` threw.
pub(super) async fn pump(
    mut stream: TextStream,
    cb: ChunkCallback,
) -> camkit::Result<Result<String, napi::Error>> {
    let mut text = String::new();
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        text.push_str(&piece);
        match call_and_wait(&cb, piece).await {
            Call::Returned(ChunkReply { stop: false }) => {}
            Call::Returned(ChunkReply { stop: true }) => break,
            Call::Threw(e) => return Ok(Err(e)),
            Call::Full | Call::Gone => {
                return Err(Error::new(
                    ErrorKind::Closed,
                    "the JavaScript environment is shutting down",
                ))
            }
        }
    }
    Ok(Ok(text))
}

/// A streamed answer's picture fields and its stream.
pub(super) fn split(a: CameraAnswer<TextStream>) -> (CameraAnswer<()>, TextStream) {
    let CameraAnswer {
        camera_id,
        seq,
        captured_at_ms,
        width,
        height,
        result,
    } = a;
    let picture = CameraAnswer {
        camera_id,
        seq,
        captured_at_ms,
        width,
        height,
        result: (),
    };
    (picture, result)
}
