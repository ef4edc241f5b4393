/*
 * stream: subscribe to a camera's frames for a while and count them.
 *
 *   stream URL SECONDS FPS [--user U --password P] [--timeout-ms MS] [--frame-timeout-ms MS]
 *
 * SIGTERM ends the SECONDS early, as if they had run out (the tests use it to hold a session
 * exactly as long as they need it, however loaded the machine is).
 *
 * Prints `frames=<n> fps=<x>`, then the camera's status as JSON (its reconnects and last
 * error show what a misbehaving camera did meanwhile), and exits 0 when frames arrived, every frame was a JPEG,
 * and no callback ran after camkit_subscription_free returned. Also checks that freeing
 * the subscription from inside its own callback is refused (CAMKIT_WOULD_DEADLOCK) and
 * that a frame kept with camkit_frame_clone outlives the subscription. On a camkit failure
 * prints `error: <CODE_NAME> (<number>): <message>` and exits with the result number.
 * Part of camkit's C tests (bindings-c/tests/run_c_tests.sh).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "camkit.h"

/* Shared with the callback, which runs on the subscription's delivery thread. */
struct counter {
  atomic_uint frames;
  atomic_uint not_jpeg;
  atomic_bool freed;          /* set once camkit_subscription_free has returned */
  atomic_uint after_free;     /* callbacks seen after that: must stay 0 */
  _Atomic(camkit_subscription *) sub;
  atomic_uint free_in_callback; /* result of freeing the subscription inside its callback */
  _Atomic(camkit_frame *) kept; /* a frame kept beyond its callback */
};

static void on_frame(void *userdata, const camkit_frame *frame) {
  struct counter *c = userdata;
  if (atomic_load(&c->freed)) {
    atomic_fetch_add(&c->after_free, 1);
  }
  const uint8_t *data = camkit_frame_data(frame);
  if (camkit_frame_len(frame) < 2 || data[0] != 0xFF || data[1] != 0xD8) {
    atomic_fetch_add(&c->not_jpeg, 1);
  }
  camkit_subscription *sub = atomic_load(&c->sub);
  if (sub != NULL && atomic_load(&c->free_in_callback) == 0) {
    /* Must be refused, not deadlock: free waits for the running callback. */
    atomic_store(&c->free_in_callback, (unsigned)camkit_subscription_free(sub));
  }
  if (atomic_load(&c->kept) == NULL) {
    camkit_frame *kept = NULL;
    if (camkit_frame_clone(frame, &kept) == CAMKIT_OK) {
      atomic_store(&c->kept, kept);
    }
  }
  atomic_fetch_add(&c->frames, 1);
}

static int report(camkit_result r) {
  char msg[1024];
  size_t len = 0;
  if (camkit_last_error(msg, sizeof msg, &len) != CAMKIT_OK) {
    snprintf(msg, sizeof msg, "(message of %zu bytes)", len);
  }
  fprintf(stderr, "error: %s (%u): %s\n", camkit_result_name(r), (unsigned)r, msg);
  return (int)r;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile sig_atomic_t stop_requested;

static void on_sigterm(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static int usage(void) {
  fprintf(stderr, "usage: stream URL SECONDS FPS [--user U --password P] [--timeout-ms MS]"
                  " [--frame-timeout-ms MS]\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    return usage();
  }
  struct sigaction term = {0};
  term.sa_handler = on_sigterm;
  sigemptyset(&term.sa_mask);
  sigaction(SIGTERM, &term, NULL);
  const char *url = argv[1];
  double seconds = strtod(argv[2], NULL);
  double fps = strtod(argv[3], NULL);
  const char *user = NULL;
  const char *password = NULL;
  unsigned long timeout_ms = 0;
  unsigned long frame_timeout_ms = 0;
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
    } else if (strcmp(argv[i], "--frame-timeout-ms") == 0) {
      frame_timeout_ms = strtoul(argv[++i], NULL, 10);
    } else {
      return usage();
    }
  }
  if (!(seconds > 0 && seconds <= 3600)) {
    return usage();
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
  cfg.frame_timeout_ms = (uint32_t)frame_timeout_ms;
  r = camkit_connect(mgr, &cfg, NULL);
  if (r != CAMKIT_OK) {
    int code = report(r);
    camkit_manager_free(mgr);
    return code;
  }
  /* On stderr (unbuffered): a script can wait for it while the program streams on. */
  fprintf(stderr, "connected\n");

  static struct counter c; /* zero-initialised atomics */
  camkit_subscribe_options opts = {0};
  opts.fps = fps; /* 0 = default 15; camkit rejects values outside 0.1-60 */
  camkit_subscription *sub = NULL;
  double t0 = now_s();
  r = camkit_subscribe(mgr, "cam", &opts, on_frame, &c, &sub);
  if (r != CAMKIT_OK) {
    int code = report(r);
    camkit_manager_free(mgr);
    return code;
  }
  atomic_store(&c.sub, sub);
  while (!stop_requested && now_s() - t0 < seconds) {
    sleep_ms(50);
  }

  r = camkit_subscription_free(sub);
  double elapsed = now_s() - t0;
  atomic_store(&c.freed, true);
  if (r != CAMKIT_OK) {
    int code = report(r);
    camkit_manager_free(mgr);
    return code;
  }
  /* Give a stray callback every chance to show up. */
  sleep_ms(300);

  unsigned frames = atomic_load(&c.frames);
  printf("frames=%u fps=%.1f\n", frames, frames / elapsed);
  char *json = NULL;
  if (camkit_status_json(mgr, "cam", &json, NULL) == CAMKIT_OK) {
    printf("%s\n", json);
    camkit_string_free(json);
  }

  int exit_code = 0;
  if (frames == 0) {
    fprintf(stderr, "error: no frame arrived in %.1f s\n", seconds);
    exit_code = 1;
  }
  if (atomic_load(&c.not_jpeg) != 0) {
    fprintf(stderr, "error: %u frames did not start with FF D8\n", atomic_load(&c.not_jpeg));
    exit_code = 1;
  }
  if (atomic_load(&c.after_free) != 0) {
    fprintf(stderr, "error: %u callbacks ran after camkit_subscription_free returned\n",
            atomic_load(&c.after_free));
    exit_code = 1;
  }
  unsigned in_cb = atomic_load(&c.free_in_callback);
  if (frames > 0 && in_cb != CAMKIT_WOULD_DEADLOCK) {
    fprintf(stderr, "error: freeing the subscription in its callback gave %s, not WOULD_DEADLOCK\n",
            camkit_result_name(in_cb));
    exit_code = 1;
  }
  camkit_frame *kept = atomic_load(&c.kept);
  if (frames > 0) {
    const uint8_t *data = camkit_frame_data(kept);
    if (kept == NULL || camkit_frame_len(kept) < 2 || data[0] != 0xFF || data[1] != 0xD8) {
      fprintf(stderr, "error: the cloned frame is not a JPEG after the subscription ended\n");
      exit_code = 1;
    } else {
      printf("kept frame: %ux%u, %zu bytes, seq %llu\n", camkit_frame_width(kept),
             camkit_frame_height(kept), camkit_frame_len(kept),
             (unsigned long long)camkit_frame_seq(kept));
    }
  }
  camkit_frame_free(kept);

  r = camkit_disconnect(mgr, "cam");
  if (r != CAMKIT_OK && exit_code == 0) {
    exit_code = report(r);
  }
  camkit_manager_free(mgr);
  return exit_code;
}
