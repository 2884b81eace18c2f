// The Vulkan backend (gpu.h, backend/backend.h). libvulkan is opened at run time (dlopen),
// so this build loads and runs on the CPU where no Vulkan loader exists. One instance per
// process and one logical device per physical device, with every pipeline built once,
// shared by all backends of that device (creation is slow, 200+ ms on lavapipe).
//
// A pass (begin() .. read_logits()) is recorded into one command buffer and submitted
// once: host data (activations written by tests, embedding rows, RoPE angles) goes through
// an upload arena, results through a download arena, and a barrier follows every
// dispatch. The arenas grow to the largest pass; when one fills mid-pass, what is recorded
// so far is submitted and recording goes on.
//
// Weights are uploaded once, as the GGUF blocks of the file (the shaders decode them), in
// chunks of whole rows that fit the device's limit for one storage-buffer binding
// (lavapipe: 128 MiB). Activations are f32. The KV cache lives on the device as a copy of
// the session's host KVCache (f32 values holding what the host cache stores: f16, or Q8_0
// blocks): each pass copies the rows it wrote back to the host cache, so the host cache
// stays the truth for saving and context shifts, and a device copy whose cache changed on
// the host (restore, shift) is uploaded again before the next pass.
#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cpu_backend.h"
#include "backend/sparsify.h"
#include "core/error.h"
#include "core/ggml_types.h"
#include "gpu/gpu.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "quant/quant.h"
#include "runtime/kv_cache.h"

namespace sparrow::vk {

namespace {

// --- SPIR-V, compiled by glslc at build time ---
const uint32_t kRmsnorm[] =
#include "rmsnorm.spv.inc"
    ;
const uint32_t kEltwise[] =
#include "eltwise.spv.inc"
    ;
const uint32_t kRope[] =
#include "rope.spv.inc"
    ;
const uint32_t kKvStore[] =
#include "kv_store.spv.inc"
    ;
const uint32_t kAttention[] =
#include "attention.spv.inc"
    ;
const uint32_t kMatmulF32[] =
#include "matmul_F32.spv.inc"
    ;
const uint32_t kMatmulF16[] =
#include "matmul_F16.spv.inc"
    ;
const uint32_t kMatmulBF16[] =
#include "matmul_BF16.spv.inc"
    ;
const uint32_t kMatmulQ8_0[] =
#include "matmul_Q8_0.spv.inc"
    ;
const uint32_t kMatmulQ4_0[] =
#include "matmul_Q4_0.spv.inc"
    ;
const uint32_t kMatmulQ4_1[] =
#include "matmul_Q4_1.spv.inc"
    ;
const uint32_t kMatmulQ5_0[] =
#include "matmul_Q5_0.spv.inc"
    ;
const uint32_t kMatmulQ5_1[] =
#include "matmul_Q5_1.spv.inc"
    ;
const uint32_t kMatmulQ4_K[] =
#include "matmul_Q4_K.spv.inc"
    ;
const uint32_t kMatmulQ5_K[] =
#include "matmul_Q5_K.spv.inc"
    ;
const uint32_t kMatmulQ6_K[] =
#include "matmul_Q6_K.spv.inc"
    ;
const uint32_t kMatmulQ2_K[] =
#include "matmul_Q2_K.spv.inc"
    ;
const uint32_t kMatmulQ3_K[] =
#include "matmul_Q3_K.spv.inc"
    ;
const uint32_t kMatmulIQ4_NL[] =
#include "matmul_IQ4_NL.spv.inc"
    ;
const uint32_t kMatmulIQ4_XS[] =
#include "matmul_IQ4_XS.spv.inc"
    ;
const uint32_t kMatmulMXFP4[] =
#include "matmul_MXFP4.spv.inc"
    ;
const uint32_t kMatmulF32_R[] =
#include "matmul_F32_reduce.spv.inc"
    ;
const uint32_t kMatmulF16_R[] =
#include "matmul_F16_reduce.spv.inc"
    ;
const uint32_t kMatmulBF16_R[] =
#include "matmul_BF16_reduce.spv.inc"
    ;
const uint32_t kMatmulQ8_0_R[] =
#include "matmul_Q8_0_reduce.spv.inc"
    ;
const uint32_t kMatmulQ4_0_R[] =
#include "matmul_Q4_0_reduce.spv.inc"
    ;
const uint32_t kMatmulQ4_1_R[] =
#include "matmul_Q4_1_reduce.spv.inc"
    ;
const uint32_t kMatmulQ5_0_R[] =
#include "matmul_Q5_0_reduce.spv.inc"
    ;
const uint32_t kMatmulQ5_1_R[] =
#include "matmul_Q5_1_reduce.spv.inc"
    ;
const uint32_t kMatmulQ4_K_R[] =
#include "matmul_Q4_K_reduce.spv.inc"
    ;
const uint32_t kMatmulQ5_K_R[] =
#include "matmul_Q5_K_reduce.spv.inc"
    ;
const uint32_t kMatmulQ6_K_R[] =
#include "matmul_Q6_K_reduce.spv.inc"
    ;
const uint32_t kMatmulQ2_K_R[] =
#include "matmul_Q2_K_reduce.spv.inc"
    ;
const uint32_t kMatmulQ3_K_R[] =
#include "matmul_Q3_K_reduce.spv.inc"
    ;
const uint32_t kMatmulIQ4_NL_R[] =
#include "matmul_IQ4_NL_reduce.spv.inc"
    ;
const uint32_t kMatmulIQ4_XS_R[] =
#include "matmul_IQ4_XS_reduce.spv.inc"
    ;
const uint32_t kMatmulMXFP4_R[] =
#include "matmul_MXFP4_reduce.spv.inc"
    ;

enum Pipe { P_RMSNORM, P_ELTWISE, P_ROPE, P_KV_STORE, P_ATTENTION, P_MATMUL0 };
struct ShaderCode {
  const uint32_t* code;
  size_t bytes;
  uint32_t type;  // the weight type of a matmul shader
  bool reduce;    // the matmul form for GPUs (see matmul.comp)
};
#define SC(a, t) {a, sizeof(a), uint32_t(t), false}
#define SCR(a, t) {a, sizeof(a), uint32_t(t), true}
const ShaderCode kShaders[] = {
    SC(kRmsnorm, 0), SC(kEltwise, 0), SC(kRope, 0), SC(kKvStore, 0), SC(kAttention, 0),
    SC(kMatmulF32, GGMLType::F32), SC(kMatmulF16, GGMLType::F16), SC(kMatmulBF16, GGMLType::BF16),
    SC(kMatmulQ8_0, GGMLType::Q8_0), SC(kMatmulQ4_0, GGMLType::Q4_0), SC(kMatmulQ4_1, GGMLType::Q4_1),
    SC(kMatmulQ5_0, GGMLType::Q5_0), SC(kMatmulQ5_1, GGMLType::Q5_1), SC(kMatmulQ4_K, GGMLType::Q4_K),
    SC(kMatmulQ5_K, GGMLType::Q5_K), SC(kMatmulQ6_K, GGMLType::Q6_K), SC(kMatmulQ2_K, GGMLType::Q2_K),
    SC(kMatmulQ3_K, GGMLType::Q3_K), SC(kMatmulIQ4_NL, GGMLType::IQ4_NL), SC(kMatmulIQ4_XS, GGMLType::IQ4_XS),
    SC(kMatmulMXFP4, GGMLType::MXFP4),
    SCR(kMatmulF32_R, GGMLType::F32),
    SCR(kMatmulF16_R, GGMLType::F16),
    SCR(kMatmulBF16_R, GGMLType::BF16),
    SCR(kMatmulQ8_0_R, GGMLType::Q8_0),
    SCR(kMatmulQ4_0_R, GGMLType::Q4_0),
    SCR(kMatmulQ4_1_R, GGMLType::Q4_1),
    SCR(kMatmulQ5_0_R, GGMLType::Q5_0),
    SCR(kMatmulQ5_1_R, GGMLType::Q5_1),
    SCR(kMatmulQ4_K_R, GGMLType::Q4_K),
    SCR(kMatmulQ5_K_R, GGMLType::Q5_K),
    SCR(kMatmulQ6_K_R, GGMLType::Q6_K),
    SCR(kMatmulQ2_K_R, GGMLType::Q2_K),
    SCR(kMatmulQ3_K_R, GGMLType::Q3_K),
    SCR(kMatmulIQ4_NL_R, GGMLType::IQ4_NL),
    SCR(kMatmulIQ4_XS_R, GGMLType::IQ4_XS),
    SCR(kMatmulMXFP4_R, GGMLType::MXFP4),
};
#undef SCR
#undef SC
constexpr int kNumPipes = int(sizeof(kShaders) / sizeof(kShaders[0]));
constexpr int kBindings = 5;
constexpr uint32_t kPushBytes = 64;

int matmul_pipe(uint32_t type, bool reduce) {
  for (int i = P_MATMUL0; i < kNumPipes; i++)
    if (kShaders[i].type == type && kShaders[i].reduce == reduce) return i;
  return -1;
}

// --- the loader and the functions we use ---
#define VK_INSTANCE_FUNCS(X)                     \
  X(vkDestroyInstance)                           \
  X(vkEnumeratePhysicalDevices)                  \
  X(vkGetPhysicalDeviceProperties)               \
  X(vkGetPhysicalDeviceProperties2)              \
  X(vkGetPhysicalDeviceFeatures2)                \
  X(vkGetPhysicalDeviceMemoryProperties)         \
  X(vkGetPhysicalDeviceQueueFamilyProperties)    \
  X(vkEnumerateDeviceExtensionProperties)        \
  X(vkCreateDevice)                              \
  X(vkDestroyDevice)                             \
  X(vkGetDeviceQueue)                            \
  X(vkCreateBuffer)                              \
  X(vkDestroyBuffer)                             \
  X(vkGetBufferMemoryRequirements)               \
  X(vkAllocateMemory)                            \
  X(vkFreeMemory)                                \
  X(vkBindBufferMemory)                          \
  X(vkMapMemory)                                 \
  X(vkUnmapMemory)                               \
  X(vkCreateShaderModule)                        \
  X(vkDestroyShaderModule)                       \
  X(vkCreateDescriptorSetLayout)                 \
  X(vkDestroyDescriptorSetLayout)                \
  X(vkCreatePipelineLayout)                      \
  X(vkDestroyPipelineLayout)                     \
  X(vkCreateComputePipelines)                    \
  X(vkDestroyPipeline)                           \
  X(vkCreateDescriptorPool)                      \
  X(vkDestroyDescriptorPool)                     \
  X(vkResetDescriptorPool)                       \
  X(vkAllocateDescriptorSets)                    \
  X(vkUpdateDescriptorSets)                      \
  X(vkCreateCommandPool)                         \
  X(vkDestroyCommandPool)                        \
  X(vkResetCommandPool)                          \
  X(vkAllocateCommandBuffers)                    \
  X(vkBeginCommandBuffer)                        \
  X(vkEndCommandBuffer)                          \
  X(vkCmdBindPipeline)                           \
  X(vkCmdBindDescriptorSets)                     \
  X(vkCmdPushConstants)                          \
  X(vkCmdDispatch)                               \
  X(vkCmdPipelineBarrier)                        \
  X(vkCmdCopyBuffer)                             \
  X(vkQueueSubmit)                               \
  X(vkCreateFence)                               \
  X(vkDestroyFence)                              \
  X(vkWaitForFences)                             \
  X(vkResetFences)

struct Fns {
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
  PFN_vkCreateInstance vkCreateInstance = nullptr;
  PFN_vkEnumerateInstanceExtensionProperties vkEnumerateInstanceExtensionProperties = nullptr;
#define DECL(n) PFN_##n n = nullptr;
  VK_INSTANCE_FUNCS(DECL)
#undef DECL
};

std::string vk_result(VkResult r) {
  switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult " + std::to_string(int(r));
  }
}

void check(VkResult r, const char* what) {
  if (r == VK_SUCCESS) return;
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
    throw sparrow_error("ERR_GPU_OUT_OF_MEMORY", std::string("Vulkan: ") + what + " failed: out of memory (" + vk_result(r) + ")");
  throw sparrow_error("ERR_GPU", std::string("Vulkan: ") + what + " failed (" + vk_result(r) + ")");
}

std::string mib(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}

// The process's Vulkan instance and devices: made on first use, kept for the life of the
// process (instance and device creation are slow; the driver frees them at exit). Pipelines
// are built on first use and kept with their device.
struct Instance {
  void* lib = nullptr;
  Fns f;
  VkInstance inst = VK_NULL_HANDLE;
  std::vector<VkPhysicalDevice> phys;
  std::vector<GpuDevice> infos;
  std::string why;  // why there is no device, when there is none
};

void* open_loader() {
#ifdef _WIN32
  return reinterpret_cast<void*>(LoadLibraryA("vulkan-1.dll"));
#else
  const char* env = std::getenv("SPARROW_VULKAN_LOADER");
  const char* names[] = {env, "libvulkan.so.1", "libvulkan.so", "libvulkan.1.dylib", "libMoltenVK.dylib"};
  for (const char* n : names)
    if (n && *n)
      if (void* h = dlopen(n, RTLD_NOW | RTLD_LOCAL)) return h;
  return nullptr;
#endif
}

void* loader_sym(void* lib, const char* name) {
#ifdef _WIN32
  return reinterpret_cast<void*>(GetProcAddress(static_cast<HMODULE>(lib), name));
#else
  return dlsym(lib, name);
#endif
}

bool has_ext(const std::vector<VkExtensionProperties>& list, const char* name) {
  for (const auto& e : list)
    if (std::strcmp(e.extensionName, name) == 0) return true;
  return false;
}

void describe(Instance& I, VkPhysicalDevice pd, int index) {
  const Fns& f = I.f;
  GpuDevice g;
  g.index = index;
  g.api = "vulkan";
  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  p2.pNext = &sub;
  f.vkGetPhysicalDeviceProperties2(pd, &p2);
  const VkPhysicalDeviceProperties& p = p2.properties;
  g.name = p.deviceName;
  switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: g.type = "discrete"; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: g.type = "integrated"; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: g.type = "virtual"; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: g.type = "cpu"; break;
    default: g.type = "other";
  }
  g.max_buffer = p.limits.maxStorageBufferRange;
  g.driver = "Vulkan " + std::to_string(VK_API_VERSION_MAJOR(p.apiVersion)) + "." +
             std::to_string(VK_API_VERSION_MINOR(p.apiVersion)) + "." + std::to_string(VK_API_VERSION_PATCH(p.apiVersion));
  VkPhysicalDeviceMemoryProperties mem;
  f.vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  for (uint32_t h = 0; h < mem.memoryHeapCount; h++)
    if (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) g.memory = std::max<uint64_t>(g.memory, mem.memoryHeaps[h].size);
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  f11.pNext = &f12;
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  f2.pNext = &f11;
  if (VK_API_VERSION_MINOR(p.apiVersion) >= 2 || VK_API_VERSION_MAJOR(p.apiVersion) > 1) {
    f.vkGetPhysicalDeviceFeatures2(pd, &f2);
    if (f12.shaderFloat16) g.features.push_back("fp16");
    if (f12.shaderInt8) g.features.push_back("int8");
    if (f11.storageBuffer16BitAccess) g.features.push_back("storage16");
  }
  if (f2.features.shaderFloat64) g.features.push_back("fp64");
  if (sub.subgroupSize) g.features.push_back("subgroup" + std::to_string(sub.subgroupSize));
  uint32_t n = 0;
  f.vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> ext(n);
  f.vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, ext.data());
  if (has_ext(ext, "VK_KHR_cooperative_matrix")) g.features.push_back("cooperativeMatrix");
  if (has_ext(ext, "VK_KHR_shader_integer_dot_product")) g.features.push_back("integerDotProduct");
  I.infos.push_back(g);
}

Instance& instance() {
  static std::mutex mu;
  static Instance* I = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (I) return *I;
  I = new Instance();
  I->lib = open_loader();
  if (!I->lib) {
    I->why = "no Vulkan loader (libvulkan) was found";
    return *I;
  }
  Fns& f = I->f;
  f.vkGetInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(loader_sym(I->lib, "vkGetInstanceProcAddr"));
  if (!f.vkGetInstanceProcAddr) {
    I->why = "the Vulkan loader has no vkGetInstanceProcAddr";
    return *I;
  }
  f.vkCreateInstance = reinterpret_cast<PFN_vkCreateInstance>(f.vkGetInstanceProcAddr(nullptr, "vkCreateInstance"));
  f.vkEnumerateInstanceExtensionProperties = reinterpret_cast<PFN_vkEnumerateInstanceExtensionProperties>(
      f.vkGetInstanceProcAddr(nullptr, "vkEnumerateInstanceExtensionProperties"));
  if (!f.vkCreateInstance || !f.vkEnumerateInstanceExtensionProperties) {
    I->why = "the Vulkan loader is incomplete";
    return *I;
  }
  uint32_t n = 0;
  f.vkEnumerateInstanceExtensionProperties(nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> ext(n);
  f.vkEnumerateInstanceExtensionProperties(nullptr, &n, ext.data());
  std::vector<const char*> want;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  // MoltenVK (macOS) lists its devices only to instances that accept portability drivers.
  if (has_ext(ext, "VK_KHR_portability_enumeration")) {
    want.push_back("VK_KHR_portability_enumeration");
    ci.flags |= 0x00000001;  // VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR
  }
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "sparrow-llm";
  app.apiVersion = VK_API_VERSION_1_2;
  ci.pApplicationInfo = &app;
  ci.enabledExtensionCount = uint32_t(want.size());
  ci.ppEnabledExtensionNames = want.data();
  VkResult r = f.vkCreateInstance(&ci, nullptr, &I->inst);
  if (r != VK_SUCCESS) {
    I->why = "vkCreateInstance failed (" + vk_result(r) + "): no Vulkan driver is installed";
    return *I;
  }
#define LOAD(n) f.n = reinterpret_cast<PFN_##n>(f.vkGetInstanceProcAddr(I->inst, #n));
  VK_INSTANCE_FUNCS(LOAD)
#undef LOAD
#define CHECK(n) \
  if (!f.n) I->why = "the Vulkan loader lacks " #n;
  VK_INSTANCE_FUNCS(CHECK)
#undef CHECK
  if (!I->why.empty()) return *I;
  n = 0;
  f.vkEnumeratePhysicalDevices(I->inst, &n, nullptr);
  I->phys.resize(n);
  if (n) f.vkEnumeratePhysicalDevices(I->inst, &n, I->phys.data());
  I->phys.resize(n);
  // Vulkan 1.2 is the floor (the shaders' target); older devices are left out.
  std::vector<VkPhysicalDevice> usable;
  for (VkPhysicalDevice pd : I->phys) {
    VkPhysicalDeviceProperties p;
    f.vkGetPhysicalDeviceProperties(pd, &p);
    if (VK_API_VERSION_MAJOR(p.apiVersion) == 1 && VK_API_VERSION_MINOR(p.apiVersion) < 2) continue;
    usable.push_back(pd);
  }
  I->phys = usable;
  for (size_t i = 0; i < I->phys.size(); i++) describe(*I, I->phys[i], int(i));
  if (I->phys.empty()) I->why = "the Vulkan loader found no device (Vulkan 1.2 or later)";
  return *I;
}

// --- one logical device, its pipelines, and buffers on it ---
struct Buf {
  VkBuffer b = VK_NULL_HANDLE;
  VkDeviceMemory m = VK_NULL_HANDLE;
  VkDeviceSize size = 0;
  void* map = nullptr;
};

struct Device {
  Instance* I = nullptr;
  const Fns* f = nullptr;
  VkPhysicalDevice pd = VK_NULL_HANDLE;
  VkDevice dev = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  uint32_t qfam = 0;
  VkPhysicalDeviceMemoryProperties mem{};
  GpuDevice info;
  VkDescriptorSetLayout dsl = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipes[kNumPipes] = {};
  std::mutex queue_mu;  // one submission at a time (backends of several models share the queue)
  std::mutex pipe_mu;

  // The compute pipeline of shader i, built on first use (then kept).
  VkPipeline pipeline(int i) {
    std::lock_guard<std::mutex> lock(pipe_mu);
    if (pipes[i]) return pipes[i];
    VkShaderModuleCreateInfo si{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    si.codeSize = kShaders[i].bytes;
    si.pCode = kShaders[i].code;
    VkShaderModule mod;
    check(f->vkCreateShaderModule(dev, &si, nullptr, &mod), "vkCreateShaderModule");
    VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = mod;
    ci.stage.pName = "main";
    ci.layout = layout;
    VkResult r = f->vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &ci, nullptr, &pipes[i]);
    f->vkDestroyShaderModule(dev, mod, nullptr);
    check(r, "vkCreateComputePipelines");
    return pipes[i];
  }
  std::mutex alloc_mu;
  uint64_t allocated = 0;  // bytes of device memory sparrow-llm holds on it

  uint32_t memory_type(uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags fallback) const {
    for (VkMemoryPropertyFlags w : {want, fallback})
      for (uint32_t i = 0; i < mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mem.memoryTypes[i].propertyFlags & w) == w) return i;
    return UINT32_MAX;
  }

  // A storage buffer; host: host-visible and mapped (arenas), else device-local.
  Buf create(VkDeviceSize size, bool host, const std::string& what) {
    size = std::max<VkDeviceSize>(16, (size + 15) & ~VkDeviceSize(15));
    Buf b;
    b.size = size;
    VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = size;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    check(f->vkCreateBuffer(dev, &bi, nullptr, &b.b), "vkCreateBuffer");
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(dev, b.b, &req);
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = host ? memory_type(req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, hv)
                         : memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type == UINT32_MAX) {
      f->vkDestroyBuffer(dev, b.b, nullptr);
      throw sparrow_error("ERR_GPU", "Vulkan: no memory type for " + what);
    }
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = type;
    VkResult r = f->vkAllocateMemory(dev, &ai, nullptr, &b.m);
    if (r != VK_SUCCESS) {
      f->vkDestroyBuffer(dev, b.b, nullptr);
      uint64_t held;
      {
        std::lock_guard<std::mutex> lock(alloc_mu);
        held = allocated;
      }
      throw sparrow_error(r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ? "ERR_GPU_OUT_OF_MEMORY" : "ERR_GPU",
                          "Vulkan: cannot allocate " + mib(req.size) + " for " + what + " on " + info.name + " (" +
                              vk_result(r) + "; device memory " + mib(info.memory) + ", " + mib(held) +
                              " already held by sparrow-llm)");
    }
    check(f->vkBindBufferMemory(dev, b.b, b.m, 0), "vkBindBufferMemory");
    if (host) check(f->vkMapMemory(dev, b.m, 0, VK_WHOLE_SIZE, 0, &b.map), "vkMapMemory");
    std::lock_guard<std::mutex> lock(alloc_mu);
    allocated += req.size;
    return b;
  }
  void destroy(Buf& b) {
    if (!b.b) return;
    if (b.map) f->vkUnmapMemory(dev, b.m);
    f->vkDestroyBuffer(dev, b.b, nullptr);
    f->vkFreeMemory(dev, b.m, nullptr);
    {
      std::lock_guard<std::mutex> lock(alloc_mu);
      allocated -= std::min<uint64_t>(allocated, b.size);
    }
    b = Buf{};
  }
};

std::shared_ptr<Device> open_device(int index) {
  static std::mutex mu;
  static std::map<int, std::shared_ptr<Device>> devices;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = devices.find(index); it != devices.end()) return it->second;
  Instance& I = instance();
  if (index < 0 || index >= int(I.phys.size()))
    throw sparrow_error("ERR_NO_GPU", I.phys.empty() ? "no Vulkan device: " + I.why
                                                     : "gpuDevice " + std::to_string(index) + " does not exist (" +
                                                           std::to_string(I.phys.size()) + " Vulkan device(s))");
  auto d = std::make_shared<Device>();
  d->I = &I;
  d->f = &I.f;
  d->pd = I.phys[size_t(index)];
  d->info = I.infos[size_t(index)];
  const Fns& f = I.f;
  f.vkGetPhysicalDeviceMemoryProperties(d->pd, &d->mem);
  uint32_t nq = 0;
  f.vkGetPhysicalDeviceQueueFamilyProperties(d->pd, &nq, nullptr);
  std::vector<VkQueueFamilyProperties> qf(nq);
  f.vkGetPhysicalDeviceQueueFamilyProperties(d->pd, &nq, qf.data());
  d->qfam = UINT32_MAX;
  // A compute queue; a compute-only family first (on discrete GPUs it runs beside graphics).
  for (uint32_t i = 0; i < nq && d->qfam == UINT32_MAX; i++)
    if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) d->qfam = i;
  for (uint32_t i = 0; i < nq && d->qfam == UINT32_MAX; i++)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) d->qfam = i;
  if (d->qfam == UINT32_MAX) throw sparrow_error("ERR_NO_GPU", "Vulkan device " + d->info.name + " has no compute queue");
  float prio = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = d->qfam;
  qi.queueCount = 1;
  qi.pQueuePriorities = &prio;
  uint32_t ne = 0;
  f.vkEnumerateDeviceExtensionProperties(d->pd, nullptr, &ne, nullptr);
  std::vector<VkExtensionProperties> ext(ne);
  f.vkEnumerateDeviceExtensionProperties(d->pd, nullptr, &ne, ext.data());
  std::vector<const char*> exts;
  if (has_ext(ext, "VK_KHR_portability_subset")) exts.push_back("VK_KHR_portability_subset");  // required where listed (MoltenVK)
  VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  di.queueCreateInfoCount = 1;
  di.pQueueCreateInfos = &qi;
  di.enabledExtensionCount = uint32_t(exts.size());
  di.ppEnabledExtensionNames = exts.data();
  check(f.vkCreateDevice(d->pd, &di, nullptr, &d->dev), "vkCreateDevice");
  f.vkGetDeviceQueue(d->dev, d->qfam, 0, &d->queue);

  VkDescriptorSetLayoutBinding b[kBindings];
  for (int i = 0; i < kBindings; i++) {
    b[i] = {};
    b[i].binding = uint32_t(i);
    b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    b[i].descriptorCount = 1;
    b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  li.bindingCount = kBindings;
  li.pBindings = b;
  check(f.vkCreateDescriptorSetLayout(d->dev, &li, nullptr, &d->dsl), "vkCreateDescriptorSetLayout");
  VkPushConstantRange pr{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushBytes};
  VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pli.setLayoutCount = 1;
  pli.pSetLayouts = &d->dsl;
  pli.pushConstantRangeCount = 1;
  pli.pPushConstantRanges = &pr;
  check(f.vkCreatePipelineLayout(d->dev, &pli, nullptr, &d->layout), "vkCreatePipelineLayout");
  devices[index] = d;
  return d;
}

// The device copy of one session's KV cache: per layer, keys and values as f32 rows of
// n_head_kv * head_dim (position-major), holding the values the host cache stores.
struct DeviceKV {
  std::shared_ptr<Device> d;
  const void* owner = nullptr;  // the backend that made it
  std::vector<Buf> k, v;
  int kvd = 0;
  uint64_t generation = ~uint64_t(0);  // the host cache's generation it matches
  ~DeviceKV() {
    for (Buf& b : k) d->destroy(b);
    for (Buf& b : v) d->destroy(b);
  }
};
// What the host cache holds (KVCache::device_copy): it dies with the cache, which tells the
// backend the cache is gone; the device copy itself also lives while recorded work uses it.
struct KvLink {
  std::shared_ptr<DeviceKV> dk;
};

// cos/sin of the rotated pairs at one position, exactly as the CPU backend computes them.
void rope_angles(const RopeParams& p, int pos, float* cs, const std::vector<float>* factors) {
  const float theta_scale = std::pow(p.base, -2.0f / float(p.rope_dim));
  const bool has_factors = factors && !factors->empty();
  float theta = float(pos);
  for (int i = 0; i < p.rope_dim / 2; i++) {
    float ff = has_factors ? (*factors)[size_t(i)] : 1.0f;
    float th = p.freq_scale * (theta / ff);
    cs[2 * i] = std::cos(th) * p.attn_factor;
    cs[2 * i + 1] = std::sin(th) * p.attn_factor;
    theta *= theta_scale;
  }
}
const std::vector<float>* rope_factors_for(const RopeParams& p, int n_ctx) {
  if (p.factors_long && !p.factors_long->empty() && n_ctx > p.long_above) return p.factors_long;
  return p.factors;
}

struct BufRef {
  VkBuffer b;
  VkDeviceSize off = 0, range = VK_WHOLE_SIZE;
};

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(int index) : d_(open_device(index)), f_(*d_->f), cpu_(1) {
    VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.queueFamilyIndex = d_->qfam;
    check(f_.vkCreateCommandPool(d_->dev, &pi, nullptr, &pool_), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool_;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    check(f_.vkAllocateCommandBuffers(d_->dev, &ai, &cb_), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check(f_.vkCreateFence(d_->dev, &fi, nullptr, &fence_), "vkCreateFence");
    dummy_ = d_->create(16, false, "a placeholder binding");
    // The matrix-product form (matmul.comp): a workgroup per row on GPUs, a thread per row on
    // CPU-type devices; SPARROW_VULKAN_MATMUL=reduce|rows forces one (tests run both).
    reduce_ = d_->info.type != "cpu";
    if (const char* e = std::getenv("SPARROW_VULKAN_MATMUL")) {
      if (std::strcmp(e, "reduce") == 0) reduce_ = true;
      if (std::strcmp(e, "rows") == 0) reduce_ = false;
    }
    max_range_ = std::min<uint64_t>(d_->info.max_buffer, uint64_t(1) << 31);
    // Tests lower the limit to split small matrices the way a large one is split.
    if (const char* e = std::getenv("SPARROW_VULKAN_MAX_BUFFER")) {
      const unsigned long long v = std::strtoull(e, nullptr, 10);
      if (v >= 1024) max_range_ = std::min<uint64_t>(max_range_, v);
    }
  }
  ~VulkanBackend() override {
    try {
      finish();
    } catch (...) {
    }
    for (auto& kv : weights_)
      for (auto& c : kv.second.chunks) d_->destroy(c.buf);
    for (auto& kv : vecs_) d_->destroy(kv.second.buf);
    for (auto& a : acts_) d_->destroy(a.buf);
    for (auto& b : free_) d_->destroy(b);
    d_->destroy(up_);
    d_->destroy(down_);
    d_->destroy(dummy_);
    for (VkDescriptorPool p : dpools_) f_.vkDestroyDescriptorPool(d_->dev, p, nullptr);
    f_.vkDestroyFence(d_->dev, fence_, nullptr);
    f_.vkDestroyCommandPool(d_->dev, pool_, nullptr);
  }

  const char* name() const override { return "vulkan"; }
  const GpuDevice& device() const { return d_->info; }

  void begin(const SeqSpan* seqs, int n_seq) override {
    // What an abandoned pass (an exception, a cancel) recorded still runs (it may upload
    // weights), but its read-backs go nowhere: their destinations may be gone.
    reads_.clear();
    finish();
    for (auto& a : acts_) free_.push_back(a.buf);
    acts_.clear();
    rope_tables_.clear();
    seqs_.assign(seqs, seqs + n_seq);
    tok_seq_.clear();
    tok_pos_.clear();
    t0_.clear();
    for (int s = 0; s < n_seq; s++) {
      t0_.push_back(int(tok_seq_.size()));
      for (int i = 0; i < seqs[s].n; i++) {
        tok_seq_.push_back(s);
        tok_pos_.push_back(seqs[s].pos0 + i);
      }
      if (seqs[s].kv) device_kv(*seqs[s].kv, seqs[s].pos0);
    }
    n_ = int(tok_seq_.size());
  }
  int tokens() const override { return n_; }

  Act alloc(int width, int rows = 0) override {
    if (rows <= 0) rows = n_;
    const VkDeviceSize bytes = VkDeviceSize(rows) * VkDeviceSize(width) * 4;
    if (bytes > max_range_)
      throw sparrow_error("ERR_GPU_UNSUPPORTED", "Vulkan: an activation of " + std::to_string(rows) + " x " + std::to_string(width) +
                                                     " floats exceeds the device's storage-buffer limit (" + mib(max_range_) +
                                                     "): use a smaller batchSize");
    // The smallest free buffer that fits, else a new one.
    int best = -1;
    for (size_t i = 0; i < free_.size(); i++)
      if (free_[i].size >= bytes && (best < 0 || free_[i].size < free_[size_t(best)].size)) best = int(i);
    ActBuf a;
    if (best >= 0) {
      a.buf = free_[size_t(best)];
      free_.erase(free_.begin() + best);
    } else {
      a.buf = d_->create(std::max<VkDeviceSize>(bytes, 256), false, "activations");
    }
    a.rows = rows;
    a.width = width;
    acts_.push_back(a);
    return Act{int(acts_.size() - 1), rows, width};
  }

  void embed(const Matrix& table, const int32_t* tokens, Act out) override {
    // The rows are picked and converted on the host (n rows of the mapped file), then uploaded.
    std::vector<float> rows(size_t(out.rows) * size_t(out.width));
    for (int t = 0; t < out.rows; t++) table.get_row(tokens[t], rows.data() + size_t(t) * size_t(out.width));
    write(out, rows.data());
  }

  void rmsnorm(Act x, const std::vector<float>& w, float eps, Act out) override {
    struct {
      uint32_t width, rows;
      float eps;
      uint32_t use_sel;
    } pc{uint32_t(x.width), uint32_t(x.rows), eps, 0};
    dispatch(P_RMSNORM, {ref(x), vec(w), ref(out), {dummy_.b}}, &pc, sizeof pc, uint32_t(x.rows));
  }

  void rmsnorm_heads(Act x, int head_dim, const std::vector<float>& w, float eps) override {
    const uint32_t rows = uint32_t(int64_t(x.rows) * x.width / head_dim);
    struct {
      uint32_t width, rows;
      float eps;
      uint32_t use_sel;
    } pc{uint32_t(head_dim), rows, eps, 0};
    dispatch(P_RMSNORM, {ref(x), vec(w), ref(x), {dummy_.b}}, &pc, sizeof pc, rows);
  }

  void matmul(const std::vector<MatMul>& group) override {
    for (const MatMul& m : group) mul(*m.w, m.x, m.y);
  }

  void add_bias(Act y, const std::vector<float>& b) override {
    if (b.empty()) return;
    eltwise(2, y, vec(b), ref(y), 0.0f);
  }

  void rope(Act x, int n_heads, const RopeParams& p) override {
    const int half = p.rope_dim / 2;
    if (half == 0 || x.rows == 0) return;
    // One table per parameter set and pass (Q and K of a layer share it).
    std::string key(reinterpret_cast<const char*>(&p), sizeof p);
    BufRef table;
    if (auto it = rope_tables_.find(key); it != rope_tables_.end()) {
      table = it->second;
    } else {
      std::vector<float> cs(size_t(x.rows) * size_t(half) * 2);
      for (int t = 0; t < x.rows; t++) {
        const SeqSpan& s = seqs_[size_t(tok_seq_[size_t(t)])];
        rope_angles(p, tok_pos_[size_t(t)], cs.data() + size_t(t) * size_t(half) * 2, rope_factors_for(p, s.kv ? s.kv->n_ctx() : 0));
      }
      Act tab = alloc(half * 2, x.rows);
      write(tab, cs.data());
      table = ref(tab);
      rope_tables_[key] = table;
    }
    struct {
      uint32_t width, n_heads, head_dim, rope_dim, neox, rows, row_off, round16;
    } pc{uint32_t(x.width), uint32_t(n_heads), uint32_t(p.head_dim), uint32_t(p.rope_dim),
         p.style == RopeStyle::NeoX ? 1u : 0u, uint32_t(x.rows), 0, 0};
    const uint64_t threads = uint64_t(x.rows) * uint64_t(n_heads) * uint64_t(half);
    dispatch(P_ROPE, {ref(x), table, {dummy_.b}, {dummy_.b}}, &pc, sizeof pc, uint32_t((threads + 63) / 64));
  }

  void kv_store(int layer, Act k, Act v) override {
    for (size_t s = 0; s < seqs_.size(); s++) {
      const SeqSpan& sq = seqs_[s];
      if (!sq.kv) throw sparrow_error("ERR_INTERNAL", "kv_store: a sequence has no KV cache");
      DeviceKV& dk = device_kv(*sq.kv, -1);
      const bool q8 = sq.kv->type() == KVType::Q8_0;
      struct {
        uint32_t kvd, n, t0, pos0, q8;
      } pc{uint32_t(dk.kvd), uint32_t(sq.n), uint32_t(t0_[s]), uint32_t(sq.pos0), q8 ? 1u : 0u};
      const uint64_t threads = uint64_t(sq.n) * uint64_t(q8 ? dk.kvd / 32 : dk.kvd);
      dispatch(P_KV_STORE, {ref(k), ref(v), {dk.k[size_t(layer)].b}, {dk.v[size_t(layer)].b}}, &pc, sizeof pc,
               uint32_t((threads + 63) / 64));
      // The rows go back to the host cache after the pass (see the file's comment).
      const VkDeviceSize off = VkDeviceSize(sq.pos0) * VkDeviceSize(dk.kvd) * 4, bytes = VkDeviceSize(sq.n) * VkDeviceSize(dk.kvd) * 4;
      KvSync ks{sq.kv, layer, sq.pos0, sq.n, 0, 0, std::static_pointer_cast<KvLink>(sq.kv->device_copy)};
      reserve_down(2 * bytes + 32);
      ks.k_off = download(dk.k[size_t(layer)].b, off, bytes, nullptr);
      ks.v_off = download(dk.v[size_t(layer)].b, off, bytes, nullptr);
      kv_syncs_.push_back(ks);
    }
  }

  void attention(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) override {
    if (p.head_dim > 256) throw sparrow_error("ERR_GPU_UNSUPPORTED", "Vulkan: attention supports head_dim up to 256");
    // Attention sinks: one logit per head that joins each softmax (see attention.comp).
    const bool has_sinks = p.sinks && !p.sinks->empty();
    if (has_sinks && p.sinks->size() != size_t(p.n_head))
      throw sparrow_error("ERR_INTERNAL", "attention: the sinks must hold one logit per head");
    const BufRef sinks = has_sinks ? vec(*p.sinks) : BufRef{dummy_.b};
    for (int s : seqs) {
      const SeqSpan& sq = seqs_[size_t(s)];
      DeviceKV& dk = device_kv(*sq.kv, -1);
      struct {
        uint32_t n_head, n_head_kv, head_dim, t0, pos0;
        float scale, softcap;
        uint32_t window, sinks;
      } pc{uint32_t(p.n_head), uint32_t(p.n_head_kv), uint32_t(p.head_dim), uint32_t(t0_[size_t(s)]), uint32_t(sq.pos0),
           p.scale, p.softcap, uint32_t(p.window), has_sinks ? 1u : 0u};
      dispatch(P_ATTENTION, {ref(q), {dk.k[size_t(layer)].b}, {dk.v[size_t(layer)].b}, ref(out), sinks}, &pc, sizeof pc,
               uint32_t(sq.n), uint32_t(p.n_head), false);
    }
  }
  // The same shader: an online softmax is already the flash-attention form.
  void attention_flash(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) override {
    attention(layer, q, out, p, seqs);
  }

  void glu(GluKind kind, Act gate, Act up, Act out) override {
    uint32_t op = 3;
    if (kind == GluKind::GeGLU) op = 4;
    else if (kind == GluKind::SwiGLUOAI) op = 9;
    else if (kind != GluKind::SwiGLU) throw sparrow_error("ERR_INTERNAL", "backend: unknown gated activation");
    eltwise(op, gate, ref(up), ref(out), 0.0f);
  }
  void add(Act x, Act y) override { eltwise(0, x, ref(y), {dummy_.b}, 0.0f); }
  void scale(Act x, float s) override { eltwise(1, x, {dummy_.b}, {dummy_.b}, s); }

  // Activation sparsity: the rows come back to the host, where the CPU backend's exact
  // selection (sparsify_row: the same count, order and ties) zeroes them, and go up again.
  void sparsify(Act x, const std::vector<float>& frac) override {
    if (frac.size() != size_t(x.rows)) throw sparrow_error("ERR_INTERNAL", "backend: sparsify needs one fraction per row");
    bool any = false;
    for (float f : frac) any = any || sparsify_count(f, x.width) > 0;
    if (!any) return;
    std::vector<float> h(size_t(x.rows) * size_t(x.width));
    read(x, h.data());
    std::vector<uint32_t> scratch(size_t(x.width));
    for (int t = 0; t < x.rows; t++) {
      const int k = sparsify_count(frac[size_t(t)], x.width);
      if (k > 0) sparsify_row(h.data() + size_t(t) * size_t(x.width), x.width, k, scratch.data());
    }
    write(x, h.data());
  }

  // Mixture of experts: the router's logits come back to the host (the one read-back inside
  // a pass: the routing decides which experts' weights are read), the routing is computed
  // as the CPU backend does, then each chosen expert runs on the device over its tokens
  // (gathered), and its output is added, weighted, to theirs (experts in index order).
  void moe(Act x, const MoeFfn& m, Act out) override {
    const int n = x.rows, D = x.width, E = int(m.gate.size()), K = m.n_used;
    if (!m.router || E < 1 || K < 1 || K > E || m.up.size() != size_t(E) || m.down.size() != size_t(E) ||
        m.router->rows() != E || m.router->cols() != D || out.width != D || out.id == x.id)
      throw sparrow_error("ERR_INTERNAL", "backend: inconsistent mixture-of-experts block");
    for (const auto* b : {&m.gate_bias, &m.up_bias, &m.down_bias})
      if (!b->empty() && b->size() != size_t(E)) throw sparrow_error("ERR_INTERNAL", "backend: expert biases must be one per expert");
    const bool rbias = m.router_bias && !m.router_bias->empty();
    if (rbias && m.router_bias->size() != size_t(E))
      throw sparrow_error("ERR_INTERNAL", "backend: the router bias must hold one value per expert");
    auto bias_of = [](const std::vector<const std::vector<float>*>& b, int e) -> const std::vector<float>* {
      return b.empty() || !b[size_t(e)] || b[size_t(e)]->empty() ? nullptr : b[size_t(e)];
    };
    if (n == 0) return;
    Act lg = alloc(E, n);
    mul(*m.router, x, lg);
    std::vector<float> p(size_t(n) * size_t(E));
    download(buf(lg).b, 0, VkDeviceSize(p.size()) * 4, p.data());
    finish();
    std::vector<std::vector<std::pair<int32_t, float>>> routed(static_cast<size_t>(E));  // (token, weight)
    std::vector<int> idx(static_cast<size_t>(E));
    for (int t = 0; t < n; t++) {
      float* pt = p.data() + size_t(t) * size_t(E);
      if (rbias)
        for (int e = 0; e < E; e++) pt[e] += (*m.router_bias)[size_t(e)];
      if (m.weight_softmax) {
        // gpt-oss: the K largest logits, weighed by the softmax over those K only.
        for (int e = 0; e < E; e++) idx[size_t(e)] = e;
        std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int a, int b) { return pt[a] > pt[b] || (pt[a] == pt[b] && a < b); });
        float mk = -INFINITY;
        for (int i = 0; i < K; i++) mk = std::max(mk, pt[idx[size_t(i)]]);
        std::vector<float> w(static_cast<size_t>(K));
        double ksum = 0;
        for (int i = 0; i < K; i++) {
          w[size_t(i)] = std::exp(pt[idx[size_t(i)]] - mk);
          ksum += double(w[size_t(i)]);
        }
        const float kinv = float(1.0 / ksum);
        for (int i = 0; i < K; i++) routed[size_t(idx[size_t(i)])].push_back({t, w[size_t(i)] * kinv});
        continue;
      }
      float mx = -INFINITY;
      for (int e = 0; e < E; e++) mx = std::max(mx, pt[e]);
      double sum = 0;
      for (int e = 0; e < E; e++) {
        pt[e] = std::exp(pt[e] - mx);
        sum += double(pt[e]);
      }
      const float inv = float(1.0 / sum);
      for (int e = 0; e < E; e++) pt[e] *= inv;
      for (int e = 0; e < E; e++) idx[size_t(e)] = e;
      std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int a, int b) { return pt[a] > pt[b] || (pt[a] == pt[b] && a < b); });
      double wsum = 0;
      for (int i = 0; i < K; i++) wsum += double(pt[idx[size_t(i)]]);
      const float s = m.norm ? std::max(float(wsum), 6.103515625e-5f) : 1.0f;
      for (int i = 0; i < K; i++) routed[size_t(idx[size_t(i)])].push_back({t, m.norm ? pt[idx[size_t(i)]] / s : pt[idx[size_t(i)]]});
    }
    eltwise(8, out, {dummy_.b}, {dummy_.b}, 0.0f);
    for (int e = 0; e < E; e++) {
      const auto& r = routed[size_t(e)];
      if (r.empty()) continue;
      const int cnt = int(r.size()), F = int(m.gate[size_t(e)]->rows());
      Act sel = alloc(2, cnt);
      std::vector<float> pairs(size_t(cnt) * 2);
      for (int i = 0; i < cnt; i++) {
        std::memcpy(&pairs[size_t(2 * i)], &r[size_t(i)].first, 4);
        pairs[size_t(2 * i + 1)] = r[size_t(i)].second;
      }
      write(sel, pairs.data());
      Act xe = alloc(D, cnt), g = alloc(F, cnt), u = alloc(F, cnt), de = alloc(D, cnt);
      eltwise(6, xe, ref(sel), ref(x), 0.0f);  // n and width from xe: o = xe, a = x
      mul(*m.gate[size_t(e)], xe, g);
      mul(*m.up[size_t(e)], xe, u);
      if (const auto* b = bias_of(m.gate_bias, e)) add_bias(g, *b);
      if (const auto* b = bias_of(m.up_bias, e)) add_bias(u, *b);
      glu(m.act, g, u, g);
      mul(*m.down[size_t(e)], g, de);
      if (const auto* b = bias_of(m.down_bias, e)) add_bias(de, *b);
      eltwise(7, de, ref(sel), ref(out), 0.0f);
    }
  }

  void read_logits(Act x, const std::vector<float>& norm, float eps, const Matrix& output, const std::vector<int>& rows,
                   float* const* dest, float softcap) override {
    const int64_t vocab = output.rows();
    // Rows in groups whose logits fit one binding.
    const int group = int(std::max<int64_t>(1, std::min<int64_t>(int64_t(rows.size()), int64_t(max_range_ / 4) / vocab)));
    for (size_t g0 = 0; g0 < rows.size(); g0 += size_t(group)) {
      const int n = int(std::min(rows.size() - g0, size_t(group)));
      Act h = normed_rows(x, norm, eps, rows.data() + g0, n);
      Act lg = alloc(int(vocab), n);
      mul(output, h, lg);
      if (softcap > 0) eltwise(5, lg, {dummy_.b}, {dummy_.b}, softcap);
      for (int i = 0; i < n; i++)
        download(buf(lg).b, VkDeviceSize(i) * VkDeviceSize(vocab) * 4, VkDeviceSize(vocab) * 4, dest[g0 + size_t(i)]);
    }
    finish();
  }

  void read_hidden(Act x, const std::vector<float>& norm, float eps, const std::vector<int>& rows, float* const* dest) override {
    Act h = normed_rows(x, norm, eps, rows.data(), int(rows.size()));
    for (size_t i = 0; i < rows.size(); i++)
      download(buf(h).b, VkDeviceSize(i) * VkDeviceSize(x.width) * 4, VkDeviceSize(x.width) * 4, dest[i]);
    finish();
  }

  // On the host cache (the truth between passes); the device copy is uploaded again
  // before the next pass that uses it.
  void rope_cache(KVCache& kv, int p0, int p1, int delta, const std::vector<RopeParams>& layers) override {
    finish();
    cpu_.rope_cache(kv, p0, p1, delta, layers);
    kv.mark_changed();
  }

  void write(Act a, const float* src) override {
    upload(buf(a), 0, src, size_t(a.rows) * size_t(a.width) * 4);
  }
  void read(Act a, float* dst) override {
    download(buf(a).b, 0, VkDeviceSize(a.rows) * VkDeviceSize(a.width) * 4, dst);
    finish();
  }

  // --- weights ---
  struct Chunk {
    Buf buf;
    int64_t row0, rows;
  };
  struct DevMatrix {
    std::vector<Chunk> chunks;
    size_t row_bytes = 0;
    int pipe = -1;
  };
  static bool supported(uint32_t type) { return matmul_pipe(type, false) >= 0; }

  const DevMatrix& weights(const Matrix& m) {
    auto it = weights_.find(&m);
    if (it != weights_.end()) return it->second;
    const int pipe = matmul_pipe(m.type(), reduce_);
    if (pipe < 0)
      throw sparrow_error("ERR_GPU_UNSUPPORTED", std::string("the Vulkan backend cannot compute with ") + type_name(m.type()) +
                                                     " weights yet");
    if (!m.source()) throw sparrow_error("ERR_INTERNAL", "Vulkan: a weight matrix has no source bytes");
    DevMatrix dm;
    dm.pipe = pipe;
    dm.row_bytes = quant_row_bytes(m.type(), m.cols());
    const int64_t per = std::max<int64_t>(1, int64_t(max_range_ / dm.row_bytes));
    if (dm.row_bytes > max_range_) throw sparrow_error("ERR_GPU_UNSUPPORTED", "Vulkan: one weight row exceeds the binding limit");
    const uint8_t* src = static_cast<const uint8_t*>(m.source());
    for (int64_t r0 = 0; r0 < m.rows(); r0 += per) {
      Chunk c;
      c.row0 = r0;
      c.rows = std::min(per, m.rows() - r0);
      const size_t bytes = size_t(c.rows) * dm.row_bytes;
      c.buf = d_->create(bytes, false, "weights (" + std::to_string(m.rows()) + " x " + std::to_string(m.cols()) + " " +
                                           type_name(m.type()) + ")");
      dm.chunks.push_back(c);
      upload(c.buf, 0, src + size_t(r0) * dm.row_bytes, bytes);
    }
    return weights_.emplace(&m, std::move(dm)).first->second;
  }

  BufRef vec(const std::vector<float>& w) {
    auto it = vecs_.find(w.data());
    if (it != vecs_.end() && it->second.n == w.size()) return {it->second.buf.b};
    if (it != vecs_.end()) {
      finish();
      d_->destroy(it->second.buf);
      vecs_.erase(it);
    }
    DevVec dv;
    dv.n = w.size();
    dv.buf = d_->create(std::max<size_t>(w.size(), 1) * 4, false, "a weight vector");
    if (!w.empty()) upload(dv.buf, 0, w.data(), w.size() * 4);
    vecs_[w.data()] = dv;
    return {dv.buf.b};
  }

 private:
  struct ActBuf {
    Buf buf;
    int rows = 0, width = 0;
  };
  struct DevVec {
    Buf buf;
    size_t n = 0;
  };
  struct Read {
    VkDeviceSize off, bytes;
    float* dst;
  };
  struct KvSync {
    KVCache* kv;
    int layer, pos0, n;
    VkDeviceSize k_off, v_off;
    std::weak_ptr<KvLink> alive;  // expired: the cache is gone (a pass abandoned when its session was disposed)
  };

  const Buf& buf(Act a) const {
    if (a.id < 0 || size_t(a.id) >= acts_.size()) throw sparrow_error("ERR_INTERNAL", "Vulkan: an invalid activation buffer");
    return acts_[size_t(a.id)].buf;
  }
  BufRef ref(Act a) const { return {buf(a).b}; }

  // The device copy of a cache, made (and, when the host cache changed, filled with its
  // positions [0, upto)) as needed. upto < 0: only find it.
  DeviceKV& device_kv(KVCache& kv, int upto) {
    auto link = std::static_pointer_cast<KvLink>(kv.device_copy);
    std::shared_ptr<DeviceKV> dk = link ? link->dk : nullptr;
    if (!dk || dk->owner != this) {
      const uint64_t layer_bytes = uint64_t(kv.n_ctx()) * uint64_t(kv.n_head_kv()) * uint64_t(kv.head_dim()) * 4;
      if (layer_bytes > max_range_)
        throw sparrow_error("ERR_GPU_UNSUPPORTED", "Vulkan: one layer of the KV cache (contextSize " + std::to_string(kv.n_ctx()) +
                                                       ", " + mib(layer_bytes) + ") exceeds " + d_->info.name +
                                                       "'s storage-buffer limit (" + mib(max_range_) + "): use a smaller contextSize");
      dk = std::make_shared<DeviceKV>();
      dk->d = d_;
      dk->owner = this;
      dk->kvd = kv.n_head_kv() * kv.head_dim();
      for (int l = 0; l < kv.n_layer(); l++) {
        dk->k.push_back(d_->create(size_t(kv.n_ctx()) * size_t(dk->kvd) * 4, false, "the KV cache"));
        dk->v.push_back(d_->create(size_t(kv.n_ctx()) * size_t(dk->kvd) * 4, false, "the KV cache"));
      }
      link = std::make_shared<KvLink>();
      link->dk = dk;
      kv.device_copy = link;
    }
    keep_.push_back(dk);  // alive until the work recorded with it has run
    if (upto >= 0 && dk->generation != kv.generation()) {
      // The device copy keeps every position at its own index, windowed layers included;
      // a windowed layer's host cache holds positions from first(l) on, and the device
      // attention reads no position before the window, so those are all it needs.
      const int hd = kv.head_dim();
      std::vector<float> rows(size_t(upto) * size_t(dk->kvd)), head(size_t(upto) * size_t(hd));
      for (int l = 0; l < kv.n_layer() && upto > 0; l++) {
        const int from = std::min(kv.first(l), upto), cnt = upto - from;
        if (cnt <= 0) continue;
        for (int which = 0; which < 2; which++) {
          for (int h = 0; h < kv.n_head_kv(); h++) {
            if (which == 0) kv.read_k(l, h, from, upto, head.data());
            else kv.read_v(l, h, from, upto, head.data());
            for (int p = 0; p < cnt; p++)
              std::memcpy(rows.data() + size_t(p) * size_t(dk->kvd) + size_t(h) * size_t(hd), head.data() + size_t(p) * size_t(hd),
                          size_t(hd) * 4);
          }
          upload(which == 0 ? dk->k[size_t(l)] : dk->v[size_t(l)], VkDeviceSize(from) * VkDeviceSize(dk->kvd) * 4, rows.data(),
                 size_t(cnt) * size_t(dk->kvd) * 4);
        }
      }
      dk->generation = kv.generation();
    }
    return *dk;
  }

  // y = W x for the x.rows rows of x.
  void mul(const Matrix& w, Act x, Act y) {
    const DevMatrix& dm = weights(w);
    for (const Chunk& c : dm.chunks) {
      struct {
        uint32_t rows, cols, n, ldy, row0, row_bytes, x_stride;
      } pc{uint32_t(c.rows), uint32_t(w.cols()), uint32_t(x.rows), uint32_t(y.width), uint32_t(c.row0), uint32_t(dm.row_bytes),
           uint32_t(x.width)};
      dispatch(dm.pipe, {{c.buf.b}, ref(x), ref(y), {dummy_.b}}, &pc, sizeof pc,
               reduce_ ? uint32_t(c.rows) : uint32_t((c.rows + 63) / 64), uint32_t((x.rows + 7) / 8));
    }
  }

  // An element-wise op over the elements of `a` (gather and scatter, 6 and 7: over those
  // of the compact rows, passed as `a`, with the full buffer as `o`; see eltwise.comp).
  void eltwise(uint32_t op, Act a, BufRef b, BufRef o, float s) {
    const uint32_t n = uint32_t(a.rows) * uint32_t(a.width);
    if (n == 0) return;
    struct {
      uint32_t op, n, width;
      float s;
    } pc{op, n, uint32_t(a.width), s};
    // The shader's `a` is the full buffer and `o` the compact rows for gather / scatter.
    if (op == 6 || op == 7) dispatch(P_ELTWISE, {o, b, ref(a), {dummy_.b}}, &pc, sizeof pc, (n + 63) / 64);
    else dispatch(P_ELTWISE, {ref(a), b, o, {dummy_.b}}, &pc, sizeof pc, (n + 63) / 64);
  }

  // The rows `rows` of x, normed, in a new buffer of n rows.
  Act normed_rows(Act x, const std::vector<float>& norm, float eps, const int* rows, int n) {
    Act sel = alloc(1, n);  // the row indices (int32, one "float" each)
    upload(buf(sel), 0, rows, size_t(n) * 4);
    Act h = alloc(x.width, n);
    struct {
      uint32_t width, rows;
      float eps;
      uint32_t use_sel;
    } pc{uint32_t(x.width), uint32_t(n), eps, 1};
    dispatch(P_RMSNORM, {ref(x), vec(norm), ref(h), ref(sel)}, &pc, sizeof pc, uint32_t(n));
    return h;
  }

  // --- recording ---
  void recording() {
    if (recording_) return;
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check(f_.vkBeginCommandBuffer(cb_, &bi), "vkBeginCommandBuffer");
    recording_ = true;
  }

  void barrier() {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    f_.vkCmdPipelineBarrier(cb_, st, st, 0, 1, &mb, 0, nullptr, 0, nullptr);
  }

  VkDescriptorSet descriptor_set() {
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &d_->dsl;
    while (true) {
      if (dpool_ == dpools_.size()) {
        VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1024 * kBindings};
        VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
        pi.maxSets = 1024;
        pi.poolSizeCount = 1;
        pi.pPoolSizes = &ps;
        VkDescriptorPool p;
        check(f_.vkCreateDescriptorPool(d_->dev, &pi, nullptr, &p), "vkCreateDescriptorPool");
        dpools_.push_back(p);
      }
      ai.descriptorPool = dpools_[dpool_];
      VkDescriptorSet set;
      VkResult r = f_.vkAllocateDescriptorSets(d_->dev, &ai, &set);
      if (r == VK_SUCCESS) return set;
      if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) check(r, "vkAllocateDescriptorSets");
      dpool_++;
    }
  }

  // One dispatch of `pipe` over gx (x spread over x and z past 65535) by gy workgroups.
  void dispatch(int pipe, std::initializer_list<BufRef> bindings, const void* pc, size_t pc_bytes, uint32_t gx, uint32_t gy = 1,
                bool spread = true) {
    if (gx == 0 || gy == 0) return;
    recording();
    VkDescriptorSet set = descriptor_set();
    VkDescriptorBufferInfo info[kBindings];
    VkWriteDescriptorSet wr[kBindings];
    int i = 0;
    for (const BufRef& b : bindings) {
      info[i] = {b.b, b.off, b.range};
      wr[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
      wr[i].dstSet = set;
      wr[i].dstBinding = uint32_t(i);
      wr[i].descriptorCount = 1;
      wr[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      wr[i].pBufferInfo = &info[i];
      i++;
    }
    f_.vkUpdateDescriptorSets(d_->dev, uint32_t(i), wr, 0, nullptr);
    f_.vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, d_->pipeline(pipe));
    f_.vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, d_->layout, 0, 1, &set, 0, nullptr);
    f_.vkCmdPushConstants(cb_, d_->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, uint32_t(pc_bytes), pc);
    uint32_t x = gx, z = 1;
    if (spread && gx > 65535) {
      x = 65535;
      z = (gx + x - 1) / x;
    }
    f_.vkCmdDispatch(cb_, x, gy, z);
    barrier();
  }

  // Host bytes to a device buffer, through the upload arena (in pieces if large).
  void upload(const Buf& dst, VkDeviceSize dst_off, const void* src, size_t bytes) {
    const uint8_t* p = static_cast<const uint8_t*>(src);
    while (bytes > 0) {
      const size_t piece = std::min<size_t>(bytes, kArenaMax);
      if (up_.size < piece || up_off_ + piece > up_.size) {
        finish();
        if (up_.size < piece) {
          d_->destroy(up_);
          up_ = d_->create(std::max<size_t>(piece, size_t(4) << 20), true, "the upload arena");
        }
      }
      std::memcpy(static_cast<uint8_t*>(up_.map) + up_off_, p, piece);
      recording();
      VkBufferCopy c{up_off_, dst_off, piece};
      f_.vkCmdCopyBuffer(cb_, up_.b, dst.b, 1, &c);
      barrier();
      up_off_ += (piece + 15) & ~size_t(15);
      p += piece;
      dst_off += piece;
      bytes -= piece;
    }
  }

  // Device bytes to host memory `dst` (nullptr: kept in the arena for the caller), done by
  // finish(); returns the offset in the download arena.
  VkDeviceSize download(VkBuffer src, VkDeviceSize src_off, VkDeviceSize bytes, float* dst) {
    reserve_down(bytes);
    recording();
    const VkDeviceSize off = down_off_;
    VkBufferCopy c{src_off, off, bytes};
    f_.vkCmdCopyBuffer(cb_, src, down_.b, 1, &c);
    barrier();
    down_off_ += (bytes + 15) & ~VkDeviceSize(15);
    if (dst) reads_.push_back({off, bytes, dst});
    return off;
  }

  // Room for `bytes` more in the download arena (finishing what is recorded when it is full).
  void reserve_down(VkDeviceSize bytes) {
    if (bytes > kArenaMax) throw sparrow_error("ERR_INTERNAL", "Vulkan: a read-back larger than the download arena");
    if (down_.size < bytes || down_off_ + bytes > down_.size) {
      if (down_off_ > 0) {
        // The arena is full: grow it for the next pass and finish this part now.
        const VkDeviceSize want = std::max<VkDeviceSize>(down_.size * 2, down_off_ + bytes);
        finish();
        d_->destroy(down_);
        down_ = d_->create(std::min<VkDeviceSize>(std::max<VkDeviceSize>(want, bytes), kArenaMax), true, "the download arena");
      } else {
        d_->destroy(down_);
        down_ = d_->create(std::max<VkDeviceSize>(bytes, VkDeviceSize(4) << 20), true, "the download arena");
      }
    }
  }

  // Submits what was recorded, waits, and delivers the read-backs.
  void finish() {
    if (!recording_) return;
    check(f_.vkEndCommandBuffer(cb_), "vkEndCommandBuffer");
    recording_ = false;
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cb_;
    {
      std::lock_guard<std::mutex> lock(d_->queue_mu);
      check(f_.vkQueueSubmit(d_->queue, 1, &si, fence_), "vkQueueSubmit");
    }
    VkResult r = f_.vkWaitForFences(d_->dev, 1, &fence_, VK_TRUE, UINT64_MAX);
    f_.vkResetFences(d_->dev, 1, &fence_);
    f_.vkResetCommandPool(d_->dev, pool_, 0);
    for (size_t i = 0; i <= dpool_ && i < dpools_.size(); i++) f_.vkResetDescriptorPool(d_->dev, dpools_[i], 0);
    dpool_ = 0;
    up_off_ = 0;
    std::vector<Read> reads;
    std::vector<KvSync> syncs;
    reads.swap(reads_);
    syncs.swap(kv_syncs_);
    down_off_ = 0;
    check(r, "vkWaitForFences");
    const uint8_t* base = static_cast<const uint8_t*>(down_.map);
    for (const Read& rd : reads) std::memcpy(rd.dst, base + rd.off, size_t(rd.bytes));
    for (const KvSync& s : syncs) {
      if (s.alive.expired()) continue;
      const int kvd = s.kv->n_head_kv() * s.kv->head_dim();
      // Only the positions the host layer holds now (a windowed layer's window may have
      // moved on since an abandoned pass recorded these rows).
      const int first = s.kv->first(s.layer), p0 = std::max(s.pos0, first),
                p1 = std::min(s.pos0 + s.n, first + s.kv->slots(s.layer));
      if (p1 > p0)
        s.kv->store(s.layer, p0, p1 - p0, reinterpret_cast<const float*>(base + s.k_off) + size_t(p0 - s.pos0) * size_t(kvd),
                    reinterpret_cast<const float*>(base + s.v_off) + size_t(p0 - s.pos0) * size_t(kvd), kvd);
      if (auto link = s.alive.lock()) link->dk->generation = s.kv->generation();
    }
    keep_.clear();
  }

  static constexpr size_t kArenaMax = size_t(256) << 20;

  std::shared_ptr<Device> d_;
  const Fns& f_;
  CpuBackend cpu_;  // context shifts on the host cache
  uint64_t max_range_ = 0;
  bool reduce_ = false;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  bool recording_ = false;
  std::vector<VkDescriptorPool> dpools_;
  size_t dpool_ = 0;
  Buf up_, down_, dummy_;
  size_t up_off_ = 0;
  VkDeviceSize down_off_ = 0;
  std::vector<Read> reads_;
  std::vector<KvSync> kv_syncs_;
  std::vector<std::shared_ptr<DeviceKV>> keep_;  // device caches the recorded work uses
  std::vector<ActBuf> acts_;
  std::vector<Buf> free_;
  std::unordered_map<const Matrix*, DevMatrix> weights_;
  std::unordered_map<const float*, DevVec> vecs_;
  std::map<std::string, BufRef> rope_tables_;
  std::vector<SeqSpan> seqs_;
  std::vector<int> tok_seq_, tok_pos_, t0_;
  int n_ = 0;
};

}  // namespace

std::vector<GpuDevice> devices() {
  try {
    return instance().infos;
  } catch (...) {
    return {};
  }
}

std::string unavailable_reason() {
  try {
    return instance().why;
  } catch (...) {
    return "the Vulkan loader failed";
  }
}

std::unique_ptr<Backend> make_backend(int index) { return std::make_unique<VulkanBackend>(index); }

bool is_backend(const Backend& be) { return dynamic_cast<const VulkanBackend*>(&be) != nullptr; }

void prepare_model(Backend& be, const Model& model) {
  auto* vb = dynamic_cast<VulkanBackend*>(&be);
  if (!vb) return;
  const HParams& hp = model.hp();
  std::vector<const Matrix*> mats{&model.output()};
  for (const LayerWeights& w : model.layers()) {
    for (const auto* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down})
      if (*m) mats.push_back(m->get());
    if (w.moe) {
      mats.push_back(w.moe->router.get());
      for (const auto* list : {&w.moe->gate, &w.moe->up, &w.moe->down})
        for (const auto& m : *list) mats.push_back(m.get());
    }
  }
  if (hp.head_dim > 256) throw sparrow_error("ERR_GPU_UNSUPPORTED", "the Vulkan backend supports head_dim up to 256");
  uint64_t need = 0;
  for (const Matrix* m : mats) {
    if (!VulkanBackend::supported(m->type()))
      throw sparrow_error("ERR_GPU_UNSUPPORTED", std::string("the Vulkan backend cannot compute with ") + type_name(m->type()) +
                                                     " weights yet");
    need += quant_row_bytes(m->type(), m->cols()) * uint64_t(m->rows());
  }
  const GpuDevice& dev = vb->device();
  uint64_t have = dev.memory;
  // Tests pretend to have less device memory to check the error.
  if (const char* e = std::getenv("SPARROW_VULKAN_MAX_MEMORY")) have = std::min<uint64_t>(have, std::strtoull(e, nullptr, 10));
  if (have > 0 && need > have)
    throw sparrow_error("ERR_GPU_OUT_OF_MEMORY", "the model's weights need " + mib(need) + " of device memory, but " + dev.name +
                                                     " has " + mib(have) + " (load it with gpu: false to run on the CPU)");
  for (const Matrix* m : mats) vb->weights(*m);
  vb->vec(model.output_norm());
  for (const LayerWeights& w : model.layers())
    for (const auto* v : {&w.attn_norm, &w.ffn_norm, &w.bq, &w.bk, &w.bv, &w.bo, &w.q_norm, &w.k_norm, &w.attn_post_norm,
                          &w.ffn_post_norm})
      if (!v->empty()) vb->vec(*v);
}

}  // namespace sparrow::vk
