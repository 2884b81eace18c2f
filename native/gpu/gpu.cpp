// The device-independent part of gpu.h: device choice, and the stubs of a build without
// the Vulkan backend.
#include "gpu.h"

#include "core/error.h"

namespace sparrow {

#ifdef SPARROW_VULKAN
namespace vk {
std::vector<GpuDevice> devices();
std::string unavailable_reason();
std::unique_ptr<Backend> make_backend(int index);
void prepare_model(Backend& be, const Model& model);
bool is_backend(const Backend& be);
}  // namespace vk
bool gpu_vulkan_compiled() { return true; }
std::vector<GpuDevice> gpu_devices() { return vk::devices(); }
std::string gpu_unavailable_reason() { return vk::unavailable_reason(); }
std::unique_ptr<Backend> gpu_make_backend(int index) { return vk::make_backend(index); }
void gpu_prepare_model(Backend& be, const Model& model) { vk::prepare_model(be, model); }
bool gpu_is_backend(const Backend& be) { return vk::is_backend(be); }
#else
bool gpu_vulkan_compiled() { return false; }
std::vector<GpuDevice> gpu_devices() { return {}; }
std::string gpu_unavailable_reason() {
  return "this build of sparrow-llm has no Vulkan backend (build it with `npm run build:vulkan`)";
}
std::unique_ptr<Backend> gpu_make_backend(int) { throw sparrow_error("ERR_NO_GPU", gpu_unavailable_reason()); }
void gpu_prepare_model(Backend&, const Model&) {}
bool gpu_is_backend(const Backend&) { return false; }
#endif

int gpu_choose(GpuMode mode, int gpu_device) {
  if (mode == GpuMode::Off) return -1;
  const std::vector<GpuDevice> devs = gpu_devices();
  if (gpu_device >= 0) {
    if (gpu_device < int(devs.size())) return gpu_device;
    if (mode == GpuMode::Auto && devs.empty()) return -1;
    throw sparrow_error("ERR_NO_GPU", "gpuDevice " + std::to_string(gpu_device) + " does not exist (" +
                                          std::to_string(devs.size()) + " Vulkan device(s)" +
                                          (devs.empty() ? ": " + gpu_unavailable_reason() : std::string()) + ")");
  }
  for (const GpuDevice& d : devs)
    if (d.type != "cpu") return d.index;
  if (mode == GpuMode::Auto) return -1;
  if (devs.empty()) throw sparrow_error("ERR_NO_GPU", "gpu: 'vulkan' needs a Vulkan device, but " + gpu_unavailable_reason());
  return devs[0].index;  // 'vulkan' takes a CPU-type device (lavapipe) when it is the only one
}

}  // namespace sparrow
