/*
 * demo_camera: serve camkit's synthetic RTSP camera until stdin closes or a signal.
 *
 *   demo_camera [--port P] [--width W] [--height H]
 *
 * Prints `READY <port> <url>` on stdout once it listens on 127.0.0.1 (port 0, the
 * default, picks a free port), then serves until stdin reaches end of file (so a test
 * harness that dies takes it along) or SIGINT/SIGTERM. Part of camkit's C tests
 * (bindings-c/tests/run_c_tests.sh).
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "camkit.h"

static void on_signal(int sig) {
  (void)sig; /* Only interrupts read() below. */
}

int main(int argc, char **argv) {
  unsigned long port = 0, width = 640, height = 360;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) {
      fprintf(stderr, "usage: demo_camera [--port P] [--width W] [--height H]\n");
      return 2;
    }
    unsigned long v = strtoul(argv[i + 1], NULL, 10);
    if (strcmp(argv[i], "--port") == 0 && v <= 65535) {
      port = v;
    } else if (strcmp(argv[i], "--width") == 0) {
      width = v;
    } else if (strcmp(argv[i], "--height") == 0) {
      height = v;
    } else {
      fprintf(stderr, "usage: demo_camera [--port P] [--width W] [--height H]\n");
      return 2;
    }
    i++;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: read() returns EINTR */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  camkit_demo_camera *cam = NULL;
  camkit_result r =
      camkit_demo_camera_start((uint16_t)port, (uint32_t)width, (uint32_t)height, &cam);
  if (r != CAMKIT_OK) {
    char msg[1024];
    if (camkit_last_error(msg, sizeof msg, NULL) != CAMKIT_OK) {
      msg[0] = '\0';
    }
    fprintf(stderr, "error: %s (%u): %s\n", camkit_result_name(r), (unsigned)r, msg);
    return (int)r;
  }
  char url[256];
  r = camkit_demo_camera_url(cam, url, sizeof url, NULL);
  if (r != CAMKIT_OK) {
    fprintf(stderr, "error: %s (%u)\n", camkit_result_name(r), (unsigned)r);
    camkit_demo_camera_free(cam);
    return (int)r;
  }
  printf("READY %u %s\n", (unsigned)camkit_demo_camera_port(cam), url);
  fflush(stdout);

  char buf[256];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
    /* Anything written to stdin is ignored; EOF, an error or a signal ends the loop. */
  }
  camkit_demo_camera_free(cam);
  return 0;
}
