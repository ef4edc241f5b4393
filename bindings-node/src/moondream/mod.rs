//! Moondream (visual reasoning) about a manager's cameras: `cameras.moondream(options)`
//! returns a `Moondream` object whose calls ask about a camera's current picture.
//!
//! - `query`, `caption`, `detect`, `point` return promises of typed results carrying the
//!   picture they are about (`seq`, `capturedAt`, `width`, `height`).
//! - `queryStream` / `captionStream` hand each piece of the answer to `onChunk` as it
//!   arrives and resolve with the whole answer. One piece is in flight at a time: the next
//!   is handed over only once `onChunk` has returned, so pieces arrive in order and all of
//!   them before the promise settles. `onChunk` returning `false` abandons the answer (the
//!   promise resolves with the text so far); `onChunk` throwing abandons it too, and the
//!   promise rejects with what it threw.
//! - `watch` asks at an interval and calls `callback(err, event)` with answers that change,
//!   through a weak thread-safe function (never keeps the process alive), one call in
//!   flight at a time.
//!
//! Errors carry camkit's `code`: `RATE_LIMITED`, `SERVICE_ERROR`, `UNAUTHORIZED`, `TIMEOUT`,
//! `UNREACHABLE`, `NOT_FOUND`, `NO_FRAME`, `INVALID_INPUT` (naming the field) … The API key
//! never appears in a message.

mod client;
mod stream;
mod types;
mod watch;

pub use client::Moondream;
pub use watch::Watch;
