/*
 * snapshot: connect to a camera, write N JPEG snapshots, print its status as JSON.
 *
 *   snapshot URL N OUTDIR [--user U --password P] [--timeout-ms MS]
 *            [--sub-stream PATH_OR_URL] [--max-width W] [--stream auto|main|sub|N]
 *
 * Writes OUTDIR/snapshot-001.jpg ... (creating OUTDIR), each a different picture of the
 * camera, checks every file starts with the JPEG marker FF D8, prints the camera's status
 * as JSON and exits 0. --stream sets the snapshot options' stream (a number is passed as
 * it is, to see a bad one refused). With --sub-stream, also prints which stream decoded
 * the snapshots:
 *
 *   sub-stream: state=streaming width=640 sub_decoded=+12 main_decoded=+0
 *
 * On failure prints
 *
 *   error: <CODE_NAME> (<number>): <message>
 *
 * and exits with the camkit_result number (UNAUTHORIZED 4, UNREACHABLE 5 ...).
 * Part of camkit's C tests (bindings-c/tests/run_c_tests.sh).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "camkit.h"

/* Prints the last camkit error of this thread; returns the result to exit with. */
static int report(camkit_result r) {
  char msg[1024];
  size_t len = 0;
  if (camkit_last_error(msg, sizeof msg, &len) != CAMKIT_OK) {
    /* Longer than the buffer: a real program would allocate len + 1 bytes. */
    snprintf(msg, sizeof msg, "(message of %zu bytes)", len);
  }
  /* The field a bad input names, for programs that point at the value (not the text). */
  char field[64];
  if (camkit_last_error_field(field, sizeof field, NULL) != CAMKIT_OK) {
    field[0] = '\0';
  }
  if (field[0] != '\0') {
    fprintf(stderr, "error: %s (%u): %s (field: %s)\n", camkit_result_name(r), (unsigned)r, msg,
            field);
  } else {
    fprintf(stderr, "error: %s (%u): %s\n", camkit_result_name(r), (unsigned)r, msg);
  }
  return (int)r;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static int usage(void) {
  fprintf(stderr, "usage: snapshot URL N OUTDIR [--user U --password P] [--timeout-ms MS] "
                  "[--sub-stream PATH_OR_URL] [--max-width W] [--stream auto|main|sub|N]\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    return usage();
  }
  const char *url = argv[1];
  long n = strtol(argv[2], NULL, 10);
  const char *outdir = argv[3];
  const char *user = NULL;
  const char *password = NULL;
  unsigned long timeout_ms = 0;
  const char *sub_stream = NULL;
  unsigned long max_width = 0;
  uint32_t stream = CAMKIT_STREAM_AUTO;
  for (int i = 4; i < argc; i++) {
    if (i + 1 >= argc) {
      return usage();
    }
    if (strcmp(argv[i], "--user") == 0) {
      user = argv[++i];
    } else if (strcmp(argv[i], "--password") == 0) {
      password = argv[++i];
    } else if (strcmp(argv[i], "--timeout-ms") == 0) {
      timeout_ms = strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--sub-stream") == 0) {
      sub_stream = argv[++i];
    } else if (strcmp(argv[i], "--max-width") == 0) {
      max_width = strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--stream") == 0) {
      const char *s = argv[++i];
      stream = strcmp(s, "auto") == 0   ? CAMKIT_STREAM_AUTO
               : strcmp(s, "main") == 0 ? CAMKIT_STREAM_MAIN
               : strcmp(s, "sub") == 0  ? CAMKIT_STREAM_SUB
                                        : (uint32_t)strtoul(s, NULL, 10);
    } else {
      return usage();
    }
  }
  if (n < 1 || n > 1000) {
    return usage();
  }
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
    perror(outdir);
    return 2;
  }

  camkit_manager *mgr = NULL;
  camkit_result r = camkit_manager_new(NULL, &mgr);
  if (r != CAMKIT_OK) {
    return report(r);
  }

  camkit_camera_config cfg;
  camkit_camera_config_init(&cfg);
  cfg.id = "cam";
  cfg.url = url;
  cfg.username = user;
  cfg.password = password;
  cfg.rtsp_timeout_ms = (uint32_t)timeout_ms;
  cfg.sub_stream = sub_stream;

  int exit_code = 0;
  camkit_status *status = NULL;
  r = camkit_connect(mgr, &cfg, &status);
  if (r != CAMKIT_OK) {
    exit_code = report(r);
    camkit_manager_free(mgr);
    return exit_code;
  }
  printf("connected: %s %s %s %ux%u codec=%s profile=%s\n", camkit_status_id(status),
         camkit_status_url(status), camkit_camera_state_name(camkit_status_state(status)),
         camkit_status_width(status), camkit_status_height(status),
         camkit_status_codec(status) ? camkit_status_codec(status) : "?",
         camkit_status_profile(status) ? camkit_status_profile(status) : "?");
  uint64_t main_before = camkit_status_frames_decoded(status);
  uint64_t sub_before = camkit_status_sub_frames_decoded(status);
  camkit_status_free(status);

  camkit_snapshot_options opts = {0};
  opts.timeout_ms = (uint32_t)timeout_ms;
  opts.max_width = (uint32_t)max_width;
  opts.stream = stream;
  uint64_t last_seq = 0;
  for (long i = 1; i <= n && exit_code == 0; i++) {
    /* Snapshots return the newest picture; wait (bounded) for one we have not written. */
    camkit_frame *frame = NULL;
    for (int tries = 0;; tries++) {
      r = camkit_snapshot(mgr, "cam", &opts, &frame);
      if (r != CAMKIT_OK) {
        exit_code = report(r);
        break;
      }
      if (camkit_frame_seq(frame) != last_seq || tries >= 100) {
        break;
      }
      camkit_frame_free(frame);
      frame = NULL;
      sleep_ms(50);
    }
    if (frame == NULL) {
      break;
    }
    const uint8_t *data = camkit_frame_data(frame);
    size_t len = camkit_frame_len(frame);
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) {
      fprintf(stderr, "error: snapshot %ld is not a JPEG (%zu bytes)\n", i, len);
      exit_code = 1;
    } else {
      char path[4096];
      snprintf(path, sizeof path, "%s/snapshot-%03ld.jpg", outdir, i);
      FILE *f = fopen(path, "wb");
      if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit_code = 1;
      } else {
        printf("wrote %s: %zu bytes, %ux%u, seq %llu\n", path, len, camkit_frame_width(frame),
               camkit_frame_height(frame), (unsigned long long)camkit_frame_seq(frame));
      }
    }
    last_seq = camkit_frame_seq(frame);
    camkit_frame_free(frame);
  }

  if (exit_code == 0 && sub_stream != NULL) {
    r = camkit_status_get(mgr, "cam", &status);
    if (r != CAMKIT_OK) {
      exit_code = report(r);
    } else {
      const char *off = camkit_status_sub_off(status);
      printf("sub-stream: state=%s width=%u sub_decoded=+%llu main_decoded=+%llu%s%s\n",
             camkit_camera_state_name(camkit_status_sub_state(status)),
             camkit_status_sub_width(status),
             (unsigned long long)(camkit_status_sub_frames_decoded(status) - sub_before),
             (unsigned long long)(camkit_status_frames_decoded(status) - main_before),
             off ? " off: " : "", off ? off : "");
      camkit_status_free(status);
    }
  }

  if (exit_code == 0) {
    char *json = NULL;
    size_t json_len = 0;
    r = camkit_status_json(mgr, "cam", &json, &json_len);
    if (r != CAMKIT_OK) {
      exit_code = report(r);
    } else {
      printf("%s\n", json);
      camkit_string_free(json);
    }
  }

  r = camkit_disconnect(mgr, "cam");
  if (r != CAMKIT_OK && exit_code == 0) {
    exit_code = report(r);
  }
  camkit_manager_free(mgr);
  return exit_code;
}
