/* Cluster mode from C against a real NATS server and camera:
 *   cluster NATS_URL CAMERA_URL PREFIX [--user U --password P]
 *
 * Two nodes (two managers, each joined as its own node) share one camera: it is connected
 * through node "c-a", node "c-b" joins after it (and must see it), and both nodes answer
 * for it: a status
 * and a JPEG snapshot from the node that does not own it (forwarded through NATS) and from
 * the owner (local). Checks on the way: the options are refused naming the field before
 * NATS is contacted, the camera list and the cluster view are JSON naming the owner and
 * never the password, a third node with another cluster key is refused with
 * CAMKIT_UNAUTHORIZED naming cluster_key, a disconnected camera is gone from every node,
 * a node that left answers CAMKIT_CLOSED. Prints
 *   owner=c-x forwarded=WxH local=WxH
 *   wrong key: error: UNAUTHORIZED (4): ... (field: cluster_key)
 * and exits 0, or prints `error: NAME (n): message` / `check failed: ...` and exits non-0.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "camkit.h"

static const char *KEY = "the-cluster-key-of-the-c-test-0123456789";

static void last_error(char *msg, size_t size, char *field, size_t field_size) {
  size_t len = 0;
  if (camkit_last_error(msg, size, &len) != CAMKIT_OK) {
    snprintf(msg, size, "(message of %zu bytes)", len);
  }
  if (camkit_last_error_field(field, field_size, &len) != CAMKIT_OK) {
    snprintf(field, field_size, "?");
  }
}

static int report(camkit_result r) {
  char msg[1024], field[64];
  last_error(msg, sizeof msg, field, sizeof field);
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

#define TRY(call)                                                                      \
  do {                                                                                 \
    camkit_result r_ = (call);                                                         \
    if (r_ != CAMKIT_OK) return report(r_);                                            \
  } while (0)

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Whether the last error named `want`. */
static int field_is(const char *want) {
  char msg[1024], field[64];
  last_error(msg, sizeof msg, field, sizeof field);
  return strcmp(field, want) == 0;
}

static camkit_cluster_options options(const char *nats, const char *node, const char *key,
                                      const char *prefix) {
  camkit_cluster_options o;
  memset(&o, 0, sizeof o);
  o.nats_url = nats;
  o.node_id = node;
  o.cluster_key = key;
  o.prefix = prefix;
  return o;
}

/* Waits (up to 10 s) until `c` sees both nodes live. */
static int sees_both(const camkit_cluster *c) {
  for (int i = 0; i < 100; i++) {
    char *view = NULL;
    if (camkit_cluster_view_json(c, &view, NULL) != CAMKIT_OK) return 0;
    int both = strstr(view, "\"id\":\"c-a\"") && strstr(view, "\"id\":\"c-b\"");
    camkit_string_free(view);
    if (both) return 1;
    sleep_ms(100);
  }
  return 0;
}

/* Waits (up to 10 s) until `c` has the one camera in its desired set. */
static int sees_desired(const camkit_cluster *c) {
  for (int i = 0; i < 100; i++) {
    char *view = NULL;
    if (camkit_cluster_view_json(c, &view, NULL) != CAMKIT_OK) return 0;
    int one = strstr(view, "\"desired\":1") != NULL;
    camkit_string_free(view);
    if (one) return 1;
    sleep_ms(100);
  }
  return 0;
}

static int is_jpeg(const camkit_frame *f) {
  const uint8_t *d = camkit_frame_data(f);
  return camkit_frame_len(f) > 2 && d[0] == 0xFF && d[1] == 0xD8;
}

static int run(camkit_manager *mgr_a, camkit_manager *mgr_b, camkit_manager *mgr_c,
               const char *nats, const char *url, const char *prefix, const char *user,
               const char *password) {
  camkit_cluster *a = NULL, *b = NULL, *c = NULL;

  /* Options are checked before NATS is contacted, naming the field. */
  camkit_cluster_options bad = options(nats, "c-a", "short", prefix);
  CHECK(camkit_cluster_join(mgr_a, &bad, &a) == CAMKIT_INVALID_INPUT && field_is("cluster_key"));
  bad = options(nats, "not a node id", KEY, prefix);
  CHECK(camkit_cluster_join(mgr_a, &bad, &a) == CAMKIT_INVALID_INPUT && field_is("node_id"));
  bad = options(nats, "c-a", KEY, prefix);
  bad.lease_ttl_ms = 1000;
  CHECK(camkit_cluster_join(mgr_a, &bad, &a) == CAMKIT_INVALID_INPUT && field_is("lease_ttl_ms"));
  bad = options(nats, "c-a", KEY, prefix);
  bad.replicas = 6;
  CHECK(camkit_cluster_join(mgr_a, &bad, &a) == CAMKIT_INVALID_INPUT && field_is("replicas"));
  bad = options(NULL, "c-a", KEY, prefix);
  CHECK(camkit_cluster_join(mgr_a, &bad, &a) == CAMKIT_NULL_ARGUMENT && field_is("nats_url"));
  CHECK(a == NULL);

  camkit_cluster_options oa = options(nats, "c-a", KEY, prefix);
  camkit_cluster_options ob = options(nats, "c-b", KEY, prefix);
  TRY(camkit_cluster_join(mgr_a, &oa, &a));

  /* A third node with another key is refused, naming cluster_key. */
  camkit_cluster_options oc = options(nats, "c-c", "not-the-key-of-this-cluster-0123456789", prefix);
  camkit_result r = camkit_cluster_join(mgr_c, &oc, &c);
  char msg[1024], field[64];
  last_error(msg, sizeof msg, field, sizeof field);
  CHECK(r == CAMKIT_UNAUTHORIZED && c == NULL);
  CHECK(strcmp(field, "cluster_key") == 0);
  CHECK(strstr(msg, "not-the-key") == NULL && strstr(msg, KEY) == NULL);
  printf("wrong key: error: %s (%u): %s (field: %s)\n", camkit_result_name(r), (unsigned)r, msg,
         field);

  /* The camera, connected through c-a, runs on the owner the cluster chose. */
  camkit_camera_config cfg;
  TRY(camkit_camera_config_init(&cfg));
  cfg.id = "door";
  cfg.url = url;
  cfg.username = user;
  cfg.password = password;
  camkit_status *st = NULL;
  TRY(camkit_cluster_connect(a, &cfg, &st));
  CHECK(camkit_status_state(st) == CAMKIT_CAMERA_STATE_STREAMING);
  camkit_status_free(st);

  /* c-b joins a cluster that has a camera already: it sees it (it stays on c-a, the
   * rendezvous winner for "door" over c-a and c-b). */
  TRY(camkit_cluster_join(mgr_b, &ob, &b));
  CHECK(sees_both(a) && sees_both(b));
  CHECK(sees_desired(b));

  char *list = NULL;
  TRY(camkit_cluster_list_json(b, &list, NULL));
  CHECK(list[0] == '[' && strstr(list, "\"id\":\"door\""));
  CHECK(password == NULL || strstr(list, password) == NULL);
  const char *owner = strstr(list, "\"owner\":\"c-a\"") ? "c-a"
                      : strstr(list, "\"owner\":\"c-b\"") ? "c-b"
                                                          : NULL;
  camkit_string_free(list);
  CHECK(owner != NULL);
  camkit_cluster *local = strcmp(owner, "c-a") == 0 ? a : b;
  camkit_cluster *remote = local == a ? b : a;

  char *view = NULL;
  TRY(camkit_cluster_view_json(remote, &view, NULL));
  CHECK(strstr(view, "\"natsConnected\":true") && strstr(view, "\"desired\":1"));
  CHECK(password == NULL || strstr(view, password) == NULL);
  camkit_string_free(view);
  /* The owner's lease health: it claimed the camera's lease and fenced nothing. */
  TRY(camkit_cluster_view_json(local, &view, NULL));
  CHECK(strstr(view, "\"stats\":{\"leaseClaims\":") && !strstr(view, "\"leaseClaims\":0,"));
  CHECK(strstr(view, "\"fencedStops\":0,"));
  camkit_string_free(view);

  /* Status and snapshot from the node that does not own it: forwarded to the owner. */
  TRY(camkit_cluster_status(remote, "door", &st));
  CHECK(camkit_status_state(st) == CAMKIT_CAMERA_STATE_STREAMING);
  CHECK(strcmp(camkit_status_id(st), "door") == 0);
  camkit_status_free(st);
  camkit_frame *fwd = NULL, *loc = NULL;
  TRY(camkit_cluster_snapshot(remote, "door", NULL, &fwd));
  CHECK(is_jpeg(fwd) && camkit_frame_width(fwd) > 0);
  camkit_snapshot_options small = {320, 70, 0, CAMKIT_STREAM_AUTO};
  TRY(camkit_cluster_snapshot(local, "door", &small, &loc));
  CHECK(is_jpeg(loc) && camkit_frame_width(loc) == 320);
  printf("owner=%s forwarded=%ux%u local=%ux%u\n", owner, camkit_frame_width(fwd),
         camkit_frame_height(fwd), camkit_frame_width(loc), camkit_frame_height(loc));
  camkit_frame_free(fwd);
  camkit_frame_free(loc);
  CHECK(camkit_cluster_snapshot(remote, "nope", NULL, &fwd) == CAMKIT_NOT_FOUND);
  camkit_snapshot_options bad_quality = {0, 101, 0, CAMKIT_STREAM_AUTO};
  CHECK(camkit_cluster_snapshot(remote, "door", &bad_quality, &fwd) == CAMKIT_INVALID_INPUT &&
        field_is("quality"));

  /* Disconnected through the other node: gone everywhere. */
  TRY(camkit_cluster_disconnect(remote, "door"));
  CHECK(camkit_cluster_status(a, "door", &st) == CAMKIT_NOT_FOUND);
  CHECK(camkit_cluster_status(b, "door", &st) == CAMKIT_NOT_FOUND);

  TRY(camkit_cluster_leave(b));
  CHECK(camkit_cluster_view_json(b, &view, NULL) == CAMKIT_CLOSED);
  camkit_cluster_free(b);
  camkit_cluster_free(a);
  camkit_cluster_free(NULL);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s NATS_URL CAMERA_URL PREFIX [--user U --password P]\n", argv[0]);
    return 2;
  }
  const char *user = NULL, *password = NULL;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--user") == 0) user = argv[i + 1];
    else if (strcmp(argv[i], "--password") == 0) password = argv[i + 1];
  }
  camkit_manager *mgr_a = NULL, *mgr_b = NULL, *mgr_c = NULL;
  camkit_result r;
  if ((r = camkit_manager_new(NULL, &mgr_a)) != CAMKIT_OK ||
      (r = camkit_manager_new(NULL, &mgr_b)) != CAMKIT_OK ||
      (r = camkit_manager_new(NULL, &mgr_c)) != CAMKIT_OK) {
    return report(r);
  }
  int rc = run(mgr_a, mgr_b, mgr_c, argv[1], argv[2], argv[3], user, password);
  camkit_manager_free(mgr_c);
  camkit_manager_free(mgr_b);
  camkit_manager_free(mgr_a);
  return rc;
}
