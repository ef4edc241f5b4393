/* The C video subscription against a real camera: video URL SECONDS OUT.mp4
 *
 * Connects the camera, subscribes to its video as fragmented MP4, writes every chunk to
 * OUT.mp4 for SECONDS seconds (run_c_tests.sh then has ffprobe and ffmpeg read that file),
 * and checks what the API promises on the way: the init segment comes first (`ftyp`) with
 * an avc1 codec string, every later chunk is a media segment (`moof`) and the first of
 * them a keyframe, presentation times move on, a chunk kept past its subscription's end stays
 * readable, a disconnected camera ends the subscription with CAMKIT_CLOSED, and bad
 * options are refused naming the field. Prints
 *   codec=avc1.xxxxxx segments=N keyframes=K bytes=B   (hvc1.… for an H.265 camera)
 * and exits 0, or prints `error: NAME (n): message` / `check failed: ...` and exits non-0.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "camkit.h"

static int report(camkit_result r) {
  char msg[1024];
  size_t len = 0;
  if (camkit_last_error(msg, sizeof msg, &len) != CAMKIT_OK) {
    snprintf(msg, sizeof msg, "(message of %zu bytes)", len);
  }
  fprintf(stderr, "error: %s (%u): %s\n", camkit_result_name(r), (unsigned)r, msg);
  return (int)r;
}

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__);              \
      return 20;                                                                       \
    }                                                                                  \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int box_is(const camkit_video_chunk *c, const char *type) {
  return camkit_video_chunk_len(c) >= 8 && memcmp(camkit_video_chunk_data(c) + 4, type, 4) == 0;
}

static int run(camkit_manager *mgr, double seconds, FILE *out) {
  /* Bad options name the field. */
  camkit_video_subscription *sub = NULL;
  camkit_video_options bad = {7, 0, CAMKIT_STREAM_AUTO};
  CHECK(camkit_video_subscribe(mgr, "cam", &bad, &sub) == CAMKIT_INVALID_INPUT);
  char field[64];
  size_t len = 0;
  CHECK(camkit_last_error_field(field, sizeof field, &len) == CAMKIT_OK && strcmp(field, "format") == 0);
  camkit_video_options bad_stream = {CAMKIT_VIDEO_FMP4, 0, 9};
  CHECK(camkit_video_subscribe(mgr, "cam", &bad_stream, &sub) == CAMKIT_INVALID_INPUT);
  CHECK(camkit_last_error_field(field, sizeof field, &len) == CAMKIT_OK && strcmp(field, "stream") == 0);
  camkit_video_options small = {CAMKIT_VIDEO_FMP4, 1000, CAMKIT_STREAM_AUTO};
  CHECK(camkit_video_subscribe(mgr, "cam", &small, &sub) == CAMKIT_INVALID_INPUT);
  CHECK(camkit_video_subscribe(mgr, "nope", NULL, &sub) == CAMKIT_NOT_FOUND);

  camkit_result r = camkit_video_subscribe(mgr, "cam", NULL, &sub);
  if (r != CAMKIT_OK) {
    return report(r);
  }
  unsigned segments = 0;
  unsigned keyframes = 0;
  size_t bytes = 0;
  int64_t last_pts = -1;
  int64_t first_pts = 0;
  int64_t max_pts = 0;
  char codec[64] = "";
  camkit_video_chunk *kept = NULL;
  double end = now_s() + seconds;
  while (now_s() < end) {
    camkit_video_chunk *c = NULL;
    r = camkit_video_next(sub, 1000, &c);
    if (r == CAMKIT_TIMEOUT) {
      continue;
    }
    if (r != CAMKIT_OK) {
      camkit_video_subscription_free(sub);
      return report(r);
    }
    if (codec[0] == '\0') {
      CHECK(camkit_video_chunk_kind(c) == CAMKIT_VIDEO_INIT && box_is(c, "ftyp"));
      CHECK(strncmp(camkit_video_chunk_codec(c), "avc1.", 5) == 0 ||
            strncmp(camkit_video_chunk_codec(c), "hvc1.", 5) == 0);
      snprintf(codec, sizeof codec, "%s", camkit_video_chunk_codec(c));
    } else {
      CHECK(camkit_video_chunk_kind(c) == CAMKIT_VIDEO_MEDIA && box_is(c, "moof"));
      CHECK(segments > 0 || camkit_video_chunk_keyframe(c));
      /* In decode order: with B-frames a picture may come before one it precedes. */
      CHECK(camkit_video_chunk_pts_90k(c) != last_pts);
      last_pts = camkit_video_chunk_pts_90k(c);
      if (segments == 0) {
        first_pts = last_pts;
      }
      max_pts = last_pts > max_pts ? last_pts : max_pts;
      segments++;
      keyframes += camkit_video_chunk_keyframe(c) ? 1 : 0;
    }
    bytes += camkit_video_chunk_len(c);
    CHECK(fwrite(camkit_video_chunk_data(c), 1, camkit_video_chunk_len(c), out) == camkit_video_chunk_len(c));
    if (kept == NULL && segments == 1) {
      kept = c; /* read again after the camera is gone */
    } else {
      camkit_video_chunk_free(c);
    }
  }
  CHECK(segments > 0 && kept != NULL);
  CHECK(max_pts > first_pts); /* presentation times move on */

  /* Disconnecting the camera ends the subscription: what is queued, then CLOSED. */
  r = camkit_disconnect(mgr, "cam");
  if (r != CAMKIT_OK) {
    return report(r);
  }
  for (;;) {
    camkit_video_chunk *c = NULL;
    r = camkit_video_next(sub, 2000, &c);
    if (r != CAMKIT_OK) {
      break;
    }
    camkit_video_chunk_free(c);
  }
  CHECK(r == CAMKIT_CLOSED);
  camkit_video_subscription_free(sub);
  CHECK(box_is(kept, "moof") && camkit_video_chunk_keyframe(kept));
  camkit_video_chunk_free(kept);
  camkit_video_subscription_free(NULL);
  camkit_video_chunk_free(NULL);
  CHECK(camkit_video_chunk_len(NULL) == 0 && camkit_video_chunk_data(NULL) == NULL);

  printf("codec=%s segments=%u keyframes=%u bytes=%zu\n", codec, segments, keyframes, bytes);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: video URL SECONDS OUT.mp4\n");
    return 2;
  }
  double seconds = strtod(argv[2], NULL);
  FILE *out = fopen(argv[3], "wb");
  if (out == NULL) {
    perror(argv[3]);
    return 2;
  }
  camkit_manager *mgr = NULL;
  camkit_result r = camkit_manager_new(NULL, &mgr);
  if (r != CAMKIT_OK) {
    fclose(out);
    return report(r);
  }
  camkit_camera_config cfg;
  camkit_camera_config_init(&cfg);
  cfg.id = "cam";
  cfg.url = argv[1];
  r = camkit_connect(mgr, &cfg, NULL);
  int code = r == CAMKIT_OK ? run(mgr, seconds, out) : report(r);
  camkit_manager_free(mgr);
  fclose(out);
  return code;
}
