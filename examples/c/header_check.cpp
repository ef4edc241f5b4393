// The header must be usable from C++ (cbindgen cpp_compat): extern "C", typed enums.
// Compiled with -fsyntax-only by the C tests; never linked.
#include "camkit.h"

static_assert(sizeof(camkit_result) == 4, "camkit_result is a uint32_t");
static_assert(CAMKIT_OK == 0 && CAMKIT_UNAUTHORIZED == 4 && CAMKIT_UNREACHABLE == 5,
              "result numbers are fixed");

static void on_frame(void *userdata, const camkit_frame *frame) {
  static_cast<void>(userdata);
  static_cast<void>(camkit_frame_len(frame));
}

int check() {
  camkit_camera_config cfg{};
  camkit_camera_config_init(&cfg);
  cfg.transport = CAMKIT_TRANSPORT_TCP;
  cfg.decode = CAMKIT_DECODE_CONTINUOUS;
  camkit_manager *mgr = nullptr;
  camkit_result r = camkit_manager_new(nullptr, &mgr);
  camkit_subscribe_options opts{};
  camkit_subscription *sub = nullptr;
  camkit_frame_callback cb = on_frame;
  r = camkit_subscribe(mgr, "cam", &opts, cb, nullptr, &sub);
  camkit_manager_free(mgr);
  return r == CAMKIT_OK ? 0 : 1;
}
