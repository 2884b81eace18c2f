// GPU backends: which devices exist and how a model chooses one. Compiled in every build;
// the Vulkan backend itself (gpu/vulkan/) is only in builds made with SPARROW_VULKAN
// (npm run build:vulkan). Where it is absent, or no Vulkan loader or device exists, the
// device list is empty and every model runs on the CPU backend.
// A Metal backend would join here the same way (its own devices, its own Backend).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace sparrow {

class Model;

struct GpuDevice {
  int index = 0;            // the gpuDevice option's value
  std::string api;          // "vulkan"
  std::string name;         // "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::string type;         // "discrete", "integrated", "virtual", "cpu", "other"
  uint64_t memory = 0;      // bytes of the largest device-local heap
  uint64_t max_buffer = 0;  // bytes one storage-buffer binding may span
  std::string driver;       // driver name and version
  std::vector<std::string> features;  // "fp16", "int8", "subgroup", "cooperativeMatrix", ...
};

// Where a model runs: the `gpu` and `gpuDevice` options of loadModel.
enum class GpuMode { Off, Auto, Vulkan };

// True when this build contains the Vulkan backend.
bool gpu_vulkan_compiled();
// The Vulkan devices (empty without the backend, a loader or a device). Never throws.
// The second form says why the list is empty (or "").
std::vector<GpuDevice> gpu_devices();
std::string gpu_unavailable_reason();

// Which device a model takes: -1 for the CPU. Auto takes the gpuDevice'th device when given,
// else the first device that is not a CPU-type device (lavapipe), else the CPU; Vulkan
// takes gpuDevice (or the first device, any type) and throws ERR_NO_GPU when there is none.
int gpu_choose(GpuMode mode, int gpu_device);

// A Vulkan backend on device `index` (throws ERR_NO_GPU without one).
std::unique_ptr<Backend> gpu_make_backend(int index);

// Uploads every weight of a model (throws ERR_GPU_OUT_OF_MEMORY naming the sizes, or
// ERR_GPU_UNSUPPORTED for a model the backend cannot run, e.g. a head dimension above 256).
void gpu_prepare_model(Backend& be, const Model& model);

// For tests: the Backend is a GPU backend.
bool gpu_is_backend(const Backend& be);

}  // namespace sparrow
