# The default CPU build (node-gyp, run by `npm install`). The list of sources comes from
# native/sources.cjs, shared with native/CMakeLists.txt. Each ISA's kernels are a static
# library of their own, because gyp has no per-file flags; the right one is chosen at run
# time, so this binary runs on any CPU of its architecture.
{
  "target_defaults": {
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags": ["-O3", "-fvisibility=hidden", "-pthread"],
    "cflags_cc": ["-O3", "-fvisibility=hidden", "-pthread", "-std=c++17", "-fexceptions"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "MACOSX_DEPLOYMENT_TARGET": "11.0",
      "OTHER_CFLAGS": ["-O3", "-fvisibility=hidden"]
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/O2"] } }
  },
  "targets": [
    {
      "target_name": "sparrow",
      "sources": ["<!@(node native/sources.cjs core)"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["sparrow_avx2", "sparrow_avx512"], "defines": ["SPARROW_HAVE_X86_KERNELS"] }],
        ["target_arch=='arm64'", { "dependencies": ["sparrow_neon"], "defines": ["SPARROW_HAVE_NEON_KERNELS"] }],
        ["OS=='win'", { "libraries!": ["-lpthread"] }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "sparrow_avx2",
          "type": "static_library",
          "sources": ["<!@(node native/sources.cjs avx2)"],
          "cflags": ["-mavx2", "-mfma", "-mf16c", "-ffp-contract=off"],
          "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off"] },
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX2"] } }
        },
        {
          "target_name": "sparrow_avx512",
          "type": "static_library",
          "sources": ["<!@(node native/sources.cjs avx512)"],
          "cflags": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off"] },
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX512"] } }
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "sparrow_neon",
          "type": "static_library",
          "sources": ["<!@(node native/sources.cjs neon)"],
          "cflags": ["-march=armv8.2-a+dotprod+fp16", "-ffp-contract=off"],
          "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-march=armv8.2-a+dotprod+fp16", "-ffp-contract=off"] }
        }
      ]
    }]
  ]
}
