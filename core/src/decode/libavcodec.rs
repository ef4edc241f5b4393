//! The libavcodec backend: FFmpeg's H.264 and H.265 (HEVC) decoders, loaded from the system
//! at run time.
//!
//! Nothing is linked at build time (no -dev packages, no bindgen): the first use looks for
//! the shared libraries of FFmpeg 4–7 (`libavcodec.so.58` … `.61` with the matching
//! `libavutil`), checks that `avcodec_version()` reports the major its file name promises,
//! and keeps the result for the life of the process. Only these majors are accepted because
//! camkit declares just the prefix of `AVFrame` and `AVPacket` that is the same in all of
//! them, and touches those objects only through pointers FFmpeg allocated.
//!
//! Loading replaces libavcodec's log output with a callback that prints nothing
//! (`av_log_set_callback`), so it never writes to the host's stderr. That setting belongs to
//! the loaded libavutil and so is process-wide: an application that uses the same FFmpeg
//! libraries itself loses their log output too.
//!
//! The callback is also how damage is noticed. libavcodec conceals damaged slices (lost
//! packets, bit errors) and returns a picture anyway, where OpenH264 reports an error; an
//! error logged while an access unit decodes makes camkit treat it as OpenH264's error
//! (the picture is not published, the frame counts as dropped, snapshots keep the last
//! good picture), so both backends report a damaged stream the same way.
//!
//! `CAMKIT_LIBAVCODEC=/path/to/libavcodec.so.60` loads that file instead of searching (its
//! libavutil is then found by soname). A file that does not load makes libavcodec
//! unavailable, which is how the tests check what happens on a machine without FFmpeg.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::OnceLock;

use libloading::Library;

use super::Codec;
use crate::error::{Error, ErrorKind, Result};
use crate::picture::Picture;

/// The environment variable naming the libavcodec file to load instead of searching.
const PATH_ENV: &str = "CAMKIT_LIBAVCODEC";

/// (libavcodec major, libavutil major) of FFmpeg 7, 6, 5 and 4, newest first.
const MAJORS: [(u32, u32); 4] = [(61, 59), (60, 58), (59, 57), (58, 56)];

/// Messages at this level or more severe mean the picture being decoded is damaged.
const AV_LOG_ERROR: c_int = 16;
const AV_LOG_INFO: c_int = 32;
/// How libavcodec's error resilience says it patched a picture up, at `AV_LOG_INFO` (FFmpeg
/// 4–7): "concealing %d DC, %d AC, %d MV errors in %c frame". Damage it detects in the
/// slice data is not always logged as an error.
const CONCEALING: &[u8] = b"concealing ";
const AV_PIX_FMT_YUV420P: c_int = 0;
const AV_PIX_FMT_YUVJ420P: c_int = 12;
/// The pixel format of H.265 Main 10 pictures, looked up by name when the library loads
/// (`AVPixelFormat` numbering is not the same in every FFmpeg).
const YUV420P10LE: &CStr = c"yuv420p10le";
/// `AVERROR(EAGAIN)`: no picture yet, or feed a packet first.
const AVERROR_EAGAIN: c_int = -EAGAIN;
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
const EAGAIN: c_int = 35;
#[cfg(not(any(target_os = "macos", target_os = "ios", target_os = "freebsd")))]
const EAGAIN: c_int = 11;
/// `AVERROR_EOF`: `-MKTAG('E','O','F',' ')`.
const AVERROR_EOF: c_int = -0x2046_4F45;

/// The prefix of `AVFrame` shared by libavutil 56–59. Only ever read through a pointer
/// from `av_frame_alloc`, never created or moved by camkit.
#[repr(C)]
struct AvFrame {
    data: [*mut u8; 8],
    linesize: [c_int; 8],
    extended_data: *mut *mut u8,
    width: c_int,
    height: c_int,
    nb_samples: c_int,
    format: c_int,
}

/// The prefix of `AVPacket` shared by libavcodec 58–61. Only ever accessed through a
/// pointer from `av_packet_alloc`.
#[repr(C)]
struct AvPacket {
    buf: *mut c_void,
    pts: i64,
    dts: i64,
    data: *mut u8,
    size: c_int,
}

/// The functions camkit calls, resolved once. The libraries are kept with them, and the
/// whole lives in a static, so the pointers stay valid for the life of the process.
pub(super) struct Api {
    version: String,
    /// `AV_PIX_FMT_YUV420P10LE` of this libavutil.
    yuv420p10le: c_int,
    find_decoder_by_name: unsafe extern "C" fn(*const c_char) -> *const c_void,
    alloc_context3: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    open2: unsafe extern "C" fn(*mut c_void, *const c_void, *mut *mut c_void) -> c_int,
    free_context: unsafe extern "C" fn(*mut *mut c_void),
    flush_buffers: unsafe extern "C" fn(*mut c_void),
    send_packet: unsafe extern "C" fn(*mut c_void, *const AvPacket) -> c_int,
    receive_frame: unsafe extern "C" fn(*mut c_void, *mut AvFrame) -> c_int,
    packet_alloc: unsafe extern "C" fn() -> *mut AvPacket,
    packet_free: unsafe extern "C" fn(*mut *mut AvPacket),
    frame_alloc: unsafe extern "C" fn() -> *mut AvFrame,
    frame_free: unsafe extern "C" fn(*mut *mut AvFrame),
    frame_unref: unsafe extern "C" fn(*mut AvFrame),
    dict_set: unsafe extern "C" fn(*mut *mut c_void, *const c_char, *const c_char, c_int) -> c_int,
    dict_free: unsafe extern "C" fn(*mut *mut c_void),
    strerror: unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int,
    pix_fmt_name: unsafe extern "C" fn(c_int) -> *const c_char,
    pix_fmt_by_name: unsafe extern "C" fn(*const c_char) -> c_int,
    _avcodec: Library,
    /// libavutil opened by name, where symbol lookup through libavcodec does not reach it.
    _avutil: Option<Library>,
}

impl Api {
    /// `59.37.100`.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn error_text(&self, code: c_int) -> String {
        let mut buf = [0 as c_char; 128];
        // SAFETY: `av_strerror` writes at most `buf.len()` bytes including the NUL into
        // the buffer, and always NUL-terminates it (also for unknown codes).
        let known = unsafe { (self.strerror)(code, buf.as_mut_ptr(), buf.len()) } == 0;
        if !known {
            return format!("error {code}");
        }
        // SAFETY: NUL-terminated by `av_strerror` (see above); the buffer outlives the borrow.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    fn pix_fmt_text(&self, format: c_int) -> String {
        // SAFETY: `av_get_pix_fmt_name` takes any value and returns NULL or a pointer to a
        // static NUL-terminated string of the library.
        let name = unsafe { (self.pix_fmt_name)(format) };
        if name.is_null() {
            format!("pixel format {format}")
        } else {
            // SAFETY: non-NULL, static and NUL-terminated (see above).
            let s = unsafe { CStr::from_ptr(name) }.to_string_lossy();
            format!("pixel format {s}")
        }
    }
}

/// The loaded libavcodec, or why it cannot be loaded. Loads on first call only.
pub(super) fn api() -> std::result::Result<&'static Api, &'static str> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(String::as_str)
}

fn load() -> std::result::Result<Api, String> {
    if let Some(path) = std::env::var_os(PATH_ENV) {
        let shown = std::path::Path::new(&path).display().to_string();
        // SAFETY: loading a shared library runs its initialisers; libavcodec's are plain
        // table set-ups. The caller named this file on purpose.
        let avcodec = unsafe { Library::new(&path) }
            .map_err(|e| format!("{PATH_ENV}={shown} does not load: {e}"))?;
        let major = avcodec_major(&avcodec)?;
        let (_, util) = MAJORS
            .iter()
            .copied()
            .find(|(c, _)| *c == major)
            .ok_or_else(|| {
                format!("{shown} is libavcodec {major}; camkit supports 58 to 61 (FFmpeg 4 to 7)")
            })?;
        return bind(avcodec, major, util);
    }
    let mut tried = Vec::new();
    for (codec, util) in MAJORS {
        let name = soname("avcodec", codec);
        // SAFETY: as above; the file is the system's libavcodec of a supported major.
        match unsafe { Library::new(&name) } {
            Ok(lib) => return bind(lib, codec, util),
            Err(_) => tried.push(name),
        }
    }
    Err(format!("none of {} found", tried.join(", ")))
}

/// The library file name of FFmpeg library `lib` (`avcodec`, `avutil`) of `major`.
fn soname(lib: &str, major: u32) -> String {
    if cfg!(target_os = "macos") {
        format!("lib{lib}.{major}.dylib")
    } else if cfg!(windows) {
        format!("{lib}-{major}.dll")
    } else {
        format!("lib{lib}.so.{major}")
    }
}

fn avcodec_major(lib: &Library) -> std::result::Result<u32, String> {
    // SAFETY: `avcodec_version` is `unsigned avcodec_version(void)` in every FFmpeg.
    let version = unsafe { lib.get::<unsafe extern "C" fn() -> c_uint>(b"avcodec_version\0") }
        .map_err(|e| format!("not a libavcodec: {e}"))?;
    // SAFETY: no arguments, returns a constant.
    Ok(unsafe { version() } >> 16)
}

fn bind(avcodec: Library, codec_major: u32, util_major: u32) -> std::result::Result<Api, String> {
    let full = {
        // SAFETY: as in `avcodec_major`.
        let f = unsafe { avcodec.get::<unsafe extern "C" fn() -> c_uint>(b"avcodec_version\0") }
            .map_err(|e| format!("not a libavcodec: {e}"))?;
        // SAFETY: no arguments, returns a constant.
        unsafe { f() }
    };
    if full >> 16 != codec_major {
        return Err(format!(
            "libavcodec.so.{codec_major} reports version {}.{}.{}",
            full >> 16,
            (full >> 8) & 0xff,
            full & 0xff
        ));
    }
    // libavutil's functions are looked up through libavcodec's handle, which searches its
    // dependencies too, so they come from the very libavutil libavcodec uses. Only where
    // that search does not reach dependencies (Windows) is libavutil opened by name. (Opening
    // it by name on Linux as well would work, but glibc then keeps a block that valgrind
    // reports as lost when that happens on a thread other than the main one.)
    // SAFETY: as in `avcodec_major`, for `unsigned avutil_version(void)`.
    let reaches_avutil =
        unsafe { avcodec.get::<unsafe extern "C" fn() -> c_uint>(b"avutil_version\0") }.is_ok();
    let avutil = if reaches_avutil {
        None
    } else {
        let util_name = soname("avutil", util_major);
        // SAFETY: libavcodec depends on this very libavutil, so it is loaded already;
        // opening it again only takes a reference.
        Some(
            unsafe { Library::new(&util_name) }
                .map_err(|e| format!("{util_name} does not load: {e}"))?,
        )
    };
    let util = avutil.as_ref().unwrap_or(&avcodec);
    {
        // SAFETY: `unsigned avutil_version(void)` in every FFmpeg.
        let f = unsafe { util.get::<unsafe extern "C" fn() -> c_uint>(b"avutil_version\0") }
            .map_err(|e| format!("libavutil: {e}"))?;
        // SAFETY: no arguments, returns a constant.
        let v = unsafe { f() };
        if v >> 16 != util_major {
            return Err(format!(
                "libavcodec {codec_major} comes with libavutil {}, not {util_major}",
                v >> 16
            ));
        }
    }
    macro_rules! sym {
        ($lib:expr, $name:literal) => {
            // SAFETY: each symbol is looked up with the C signature it has in FFmpeg 4–7
            // (the field type it is assigned to); the library stays loaded with the `Api`.
            *unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("{}: {e}", $name))?
        };
    }
    let mut api = Api {
        version: format!("{}.{}.{}", full >> 16, (full >> 8) & 0xff, full & 0xff),
        yuv420p10le: -1,
        find_decoder_by_name: sym!(avcodec, "avcodec_find_decoder_by_name"),
        alloc_context3: sym!(avcodec, "avcodec_alloc_context3"),
        open2: sym!(avcodec, "avcodec_open2"),
        free_context: sym!(avcodec, "avcodec_free_context"),
        flush_buffers: sym!(avcodec, "avcodec_flush_buffers"),
        send_packet: sym!(avcodec, "avcodec_send_packet"),
        receive_frame: sym!(avcodec, "avcodec_receive_frame"),
        packet_alloc: sym!(avcodec, "av_packet_alloc"),
        packet_free: sym!(avcodec, "av_packet_free"),
        frame_alloc: sym!(util, "av_frame_alloc"),
        frame_free: sym!(util, "av_frame_free"),
        frame_unref: sym!(util, "av_frame_unref"),
        dict_set: sym!(util, "av_dict_set"),
        dict_free: sym!(util, "av_dict_free"),
        strerror: sym!(util, "av_strerror"),
        pix_fmt_name: sym!(util, "av_get_pix_fmt_name"),
        pix_fmt_by_name: sym!(util, "av_get_pix_fmt"),
        _avcodec: avcodec,
        _avutil: avutil,
    };
    // SAFETY: `av_get_pix_fmt` takes a NUL-terminated name and returns the format's number,
    // or AV_PIX_FMT_NONE (-1) for a name it does not know.
    api.yuv420p10le = unsafe { (api.pix_fmt_by_name)(YUV420P10LE.as_ptr()) };
    let util = api._avutil.as_ref().unwrap_or(&api._avcodec);
    let set_callback: unsafe extern "C" fn(LogCallback) = sym!(util, "av_log_set_callback");
    // SAFETY: installs a function that stays valid for the life of the process and accepts
    // any arguments (see `log_callback`); process-wide (see the module doc).
    unsafe { set_callback(log_callback) };
    Ok(api)
}

/// `void (*)(void *avcl, int level, const char *fmt, va_list vl)`. `va_list` is passed as
/// one pointer-sized argument on the ABIs FFmpeg runs on (a pointer to the list on x86-64
/// and AArch64 Linux, where it is an array or a large struct; a `char *` on macOS and
/// Windows), and the callback never reads it.
type LogCallback = unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *mut c_void);

thread_local! {
    /// The format string of the first error libavcodec logged on this thread since the
    /// decoder of this thread last reset it (a static string of the library, or NULL).
    static FIRST_ERROR: Cell<*const c_char> = const { Cell::new(std::ptr::null()) };
}

/// libavcodec's log output: printed nowhere; errors are noted for the decode under way on
/// this thread (with one thread per context, libavcodec logs on the thread that called it).
unsafe extern "C" fn log_callback(
    _avcl: *mut c_void,
    level: c_int,
    fmt: *const c_char,
    _vl: *mut c_void,
) {
    if fmt.is_null() || level > AV_LOG_INFO {
        return;
    }
    // SAFETY: `av_log`'s format string: NUL-terminated, and static in the library.
    let damage = level <= AV_LOG_ERROR
        || unsafe { CStr::from_ptr(fmt) }
            .to_bytes()
            .starts_with(CONCEALING);
    if damage {
        // `try_with`: nothing to note while the thread is being torn down.
        let _ = FIRST_ERROR.try_with(|e| {
            if e.get().is_null() {
                e.set(fmt);
            }
        });
    }
}

/// One libavcodec decoder context (H.264 or H.265), single-threaded (camkit already runs
/// one decode thread per camera).
pub(super) struct AvDecoder {
    api: &'static Api,
    /// `H.264`, `H.265`, for messages.
    label: &'static str,
    ctx: *mut c_void,
    packet: *mut AvPacket,
    frame: *mut AvFrame,
}

// SAFETY: the context, packet and frame belong to this value alone and FFmpeg does not tie
// them to the thread that made them (with threads=1 it starts no threads of its own); `&mut
// self` on every call keeps them to one thread at a time.
unsafe impl Send for AvDecoder {}

impl AvDecoder {
    pub fn new(codec: Codec) -> Result<Self> {
        let api = api().map_err(|why| {
            Error::new(
                ErrorKind::Internal,
                format!("libavcodec cannot be loaded: {why}"),
            )
        })?;
        // Build the value first, so `Drop` frees whatever was allocated on any failure below.
        let label = codec.label();
        let mut d = AvDecoder {
            api,
            label,
            ctx: std::ptr::null_mut(),
            packet: std::ptr::null_mut(),
            frame: std::ptr::null_mut(),
        };
        let fail = |what: &str| Error::new(ErrorKind::Internal, format!("libavcodec: {what}"));
        // SAFETY: plain FFmpeg constructors; each result is checked for NULL before use.
        unsafe {
            let name = match codec {
                Codec::H264 => c"h264",
                Codec::H265 => c"hevc",
            };
            let codec = (api.find_decoder_by_name)(name.as_ptr());
            if codec.is_null() {
                return Err(fail(&format!("this build has no {label} decoder")));
            }
            d.ctx = (api.alloc_context3)(codec);
            d.packet = (api.packet_alloc)();
            d.frame = (api.frame_alloc)();
            if d.ctx.is_null() || d.packet.is_null() || d.frame.is_null() {
                return Err(fail("out of memory"));
            }
            let mut opts: *mut c_void = std::ptr::null_mut();
            let r = (api.dict_set)(&mut opts, c"threads".as_ptr(), c"1".as_ptr(), 0);
            let r = if r < 0 {
                r
            } else {
                (api.open2)(d.ctx, codec, &mut opts)
            };
            // Options that were not consumed stay in the dictionary; free it either way.
            (api.dict_free)(&mut opts);
            if r < 0 {
                return Err(fail(&format!(
                    "cannot open the {label} decoder: {}",
                    api.error_text(r)
                )));
            }
        }
        Ok(d)
    }

    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<Picture>> {
        let mut picture = None;
        self.run(annexb, |api, frame| {
            picture = Some(to_picture(api, frame)?);
            Ok(())
        })?;
        Ok(picture)
    }

    pub fn decode_discard(&mut self, annexb: &[u8]) -> Result<bool> {
        let mut got = false;
        self.run(annexb, |_, _| {
            got = true;
            Ok(())
        })?;
        Ok(got)
    }

    /// Drains the pictures held back for reordering (B-frames) and returns the last of
    /// them, the newest in display order. The decoder is then reset: it has no reference
    /// pictures left and must be fed from a keyframe again.
    pub fn drain(&mut self) -> Result<Option<Picture>> {
        let api = self.api;
        let _ = FIRST_ERROR.try_with(|e| e.set(std::ptr::null()));
        // SAFETY: a NULL packet asks an open decoder to enter draining mode.
        let sent = unsafe { (api.send_packet)(self.ctx, std::ptr::null()) };
        let mut result = if sent < 0 && sent != AVERROR_EOF {
            Err(self.decode_error(sent))
        } else {
            Ok(())
        };
        let mut picture = None;
        if result.is_ok() {
            result = self.receive_all(|api, frame| {
                picture = Some(to_picture(api, frame)?);
                Ok(())
            });
        }
        // SAFETY: leaves draining mode and drops every buffered and reference picture; the
        // context stays open and decodes again from the next keyframe.
        unsafe { (api.flush_buffers)(self.ctx) };
        let result = self.damage_check(result);
        result.map(|()| picture)
    }

    /// Sends one access unit and hands every picture it completes to `each` (one at once
    /// for streams without B-frames; with B-frames, pictures come out in display order,
    /// up to the stream's reorder depth later).
    fn run(
        &mut self,
        annexb: &[u8],
        mut each: impl FnMut(&Api, &AvFrame) -> Result<()>,
    ) -> Result<()> {
        // An empty packet would mean "end of stream" and put the decoder in draining mode.
        if annexb.is_empty() {
            return Ok(());
        }
        let size = c_int::try_from(annexb.len()).map_err(|_| {
            Error::new(
                ErrorKind::Decode,
                format!("access unit of {} bytes is too large", annexb.len()),
            )
        })?;
        let api = self.api;
        let _ = FIRST_ERROR.try_with(|e| e.set(std::ptr::null()));
        // SAFETY: `packet` came from `av_packet_alloc` and owns no buffer (`buf` NULL), so
        // setting `data`/`size` lends it our slice; `avcodec_send_packet` copies unowned data
        // (into a padded buffer) before returning, and the fields are cleared right after,
        // so FFmpeg never keeps the pointer.
        let sent = unsafe {
            (*self.packet).data = annexb.as_ptr().cast_mut();
            (*self.packet).size = size;
            let r = (api.send_packet)(self.ctx, self.packet);
            (*self.packet).data = std::ptr::null_mut();
            (*self.packet).size = 0;
            r
        };
        let result = if sent < 0 && sent != AVERROR_EAGAIN {
            Err(self.decode_error(sent))
        } else {
            Ok(())
        };
        let received = self.receive_all(&mut each);
        self.damage_check(result.and(received))
    }

    /// Receives every picture the decoder has ready, handing each to `each`.
    fn receive_all(&mut self, mut each: impl FnMut(&Api, &AvFrame) -> Result<()>) -> Result<()> {
        let api = self.api;
        let mut result = Ok(());
        loop {
            // SAFETY: `ctx` is an open decoder and `frame` an `av_frame_alloc` frame, which
            // `avcodec_receive_frame` unrefs before filling.
            let r = unsafe { (api.receive_frame)(self.ctx, self.frame) };
            if r == AVERROR_EAGAIN || r == AVERROR_EOF {
                break;
            }
            if r < 0 {
                result = Err(self.decode_error(r));
                break;
            }
            // SAFETY: a frame was just returned; it stays valid until the unref below.
            let out = each(api, unsafe { &*self.frame });
            // SAFETY: drops our reference to the picture buffers; the frame is reusable.
            unsafe { (api.frame_unref)(self.frame) };
            if out.is_err() {
                result = out;
            }
        }
        result
    }

    /// Turns damage libavcodec logged since the decode began into an error (see the
    /// module doc), unless the decode already failed.
    fn damage_check(&self, result: Result<()>) -> Result<()> {
        let logged = FIRST_ERROR
            .try_with(|e| e.replace(std::ptr::null()))
            .unwrap_or(std::ptr::null());
        if result.is_ok() && !logged.is_null() {
            // SAFETY: a format string libavcodec passed to `av_log`: a NUL-terminated static
            // string of the library, which stays loaded.
            let what = unsafe { CStr::from_ptr(logged) }.to_string_lossy();
            // The format string, not the formatted line: placeholders shown as "…".
            let what = ["%d", "%c", "%s", "%u", "%i"]
                .iter()
                .fold(what.into_owned(), |w, p| w.replace(p, "…"));
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "{} decode failed: damaged data (libavcodec: {})",
                    self.label,
                    what.trim_end()
                ),
            ));
        }
        result
    }

    fn decode_error(&self, code: c_int) -> Error {
        Error::new(
            ErrorKind::Decode,
            format!(
                "{} decode failed: {}",
                self.label,
                self.api.error_text(code)
            ),
        )
    }
}

impl Drop for AvDecoder {
    fn drop(&mut self) {
        // SAFETY: each free function takes a pointer to the pointer, accepts NULL and sets
        // it to NULL; every object was allocated by this library and is freed once.
        unsafe {
            (self.api.frame_free)(&mut self.frame);
            (self.api.packet_free)(&mut self.packet);
            (self.api.free_context)(&mut self.ctx);
        }
    }
}

/// Copies a decoded frame out, like the OpenH264 path does. 10-bit 4:2:0 (H.265 Main 10)
/// is rounded to 8 bits on the way.
fn to_picture(api: &Api, f: &AvFrame) -> Result<Picture> {
    let ten_bit = f.format == api.yuv420p10le && api.yuv420p10le >= 0;
    if f.format != AV_PIX_FMT_YUV420P && f.format != AV_PIX_FMT_YUVJ420P && !ten_bit {
        return Err(Error::new(
            ErrorKind::Decode,
            format!(
                "the stream decodes to {}; camkit handles 4:2:0 (yuv420p, yuv420p10le) only",
                api.pix_fmt_text(f.format)
            ),
        ));
    }
    let (w, h) = (f.width, f.height);
    let bad = || {
        Error::new(
            ErrorKind::Decode,
            format!("decoder returned planes that do not fit {w}x{h}"),
        )
    };
    if w <= 0 || h <= 0 {
        return Err(bad());
    }
    let (w, h) = (w as u32, h as u32);
    let (cw, ch) = Picture::chroma_dims(w, h);
    // Bytes per sample.
    let bytes = if ten_bit { 2 } else { 1 };
    let mut planes: [(&[u8], usize); 3] = [(&[], 0); 3];
    for (i, (pw, ph)) in [(w, h), (cw, ch), (cw, ch)].into_iter().enumerate() {
        let (data, stride) = (f.data[i], f.linesize[i]);
        let row = pw as usize * bytes;
        if data.is_null() || stride < 0 || (stride as usize) < row {
            return Err(bad());
        }
        let stride = stride as usize;
        let len = stride * (ph as usize - 1) + row;
        // SAFETY: a yuv420p / yuv420p10le frame from libavcodec has planes of `linesize *
        // rows` bytes (plus padding) for `height` / `ceil(height/2)` rows, each row at least
        // the plane width's samples wide (checked above); we read no further than the last
        // row's samples, while the caller holds the frame.
        planes[i] = (unsafe { std::slice::from_raw_parts(data, len) }, stride);
    }
    if !ten_bit {
        return Picture::from_strided(w, h, planes).ok_or_else(bad);
    }
    let narrow = |(src, stride): (&[u8], usize), pw: u32, ph: u32| -> Vec<u8> {
        let mut out = Vec::with_capacity(pw as usize * ph as usize);
        for r in 0..ph as usize {
            let row = &src[r * stride..r * stride + pw as usize * 2];
            out.extend(row.chunks_exact(2).map(|s| {
                // Little-endian 10-bit sample to 8 bits, rounded.
                let v = u16::from_le_bytes([s[0], s[1]]);
                ((u32::from(v) + 2) >> 2).min(255) as u8
            }));
        }
        out
    };
    let y = narrow(planes[0], w, h);
    let u = narrow(planes[1], cw, ch);
    let v = narrow(planes[2], cw, ch);
    Picture::from_strided(
        w,
        h,
        [(&y, w as usize), (&u, cw as usize), (&v, cw as usize)],
    )
    .ok_or_else(bad)
}
