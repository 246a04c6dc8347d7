# Finds TensorRT's headers and libnvinfer (TensorRT_ROOT, then JetPack's and the distribution's
# locations) and, when both are there, adds the deblur_trt_plugins shared library; otherwise
# says once why it is skipped.
#
# DEBLUR_TRT_WITHOUT_NVINFER=ON builds the plugin library from the headers alone (it calls no
# libnvinfer function: TensorRT calls into it), to check that it compiles against a TensorRT
# version that is not installed.
set(TensorRT_ROOT "$ENV{TensorRT_ROOT}" CACHE PATH "TensorRT install (include/, lib/); empty: system/JetPack paths")
option(DEBLUR_TRT_WITHOUT_NVINFER "Build deblur_trt_plugins from TensorRT's headers without libnvinfer" OFF)

find_path(TensorRT_INCLUDE_DIR NvInferRuntime.h
  HINTS ${TensorRT_ROOT}
  PATH_SUFFIXES include
  PATHS /usr/include/aarch64-linux-gnu /usr/include/x86_64-linux-gnu /usr/local/TensorRT/include)
find_library(TensorRT_NVINFER_LIBRARY nvinfer
  HINTS ${TensorRT_ROOT}
  PATH_SUFFIXES lib lib64
  PATHS /usr/lib/aarch64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/local/TensorRT/lib)

set(TensorRT_VERSION "")
if(TensorRT_INCLUDE_DIR AND EXISTS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
  file(STRINGS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h" version_lines
       REGEX "#define (NV_TENSORRT_MAJOR|NV_TENSORRT_MINOR|NV_TENSORRT_PATCH|TRT_MAJOR_ENTERPRISE|TRT_MINOR_ENTERPRISE|TRT_PATCH_ENTERPRISE) ")
  foreach(part MAJOR MINOR PATCH)
    string(REGEX MATCH "#define (NV_TENSORRT_${part}|TRT_${part}_ENTERPRISE) ([0-9]+)" _ "${version_lines}")
    set(TensorRT_${part} "${CMAKE_MATCH_2}")
  endforeach()
  set(TensorRT_VERSION "${TensorRT_MAJOR}.${TensorRT_MINOR}.${TensorRT_PATCH}")
endif()

if(NOT TensorRT_INCLUDE_DIR)
  message(STATUS "deblur_trt_plugins: skipped (TensorRT headers not found; set -DTensorRT_ROOT=<TensorRT install> "
                 "or install JetPack's libnvinfer-dev)")
elseif(TensorRT_VERSION AND TensorRT_VERSION VERSION_LESS 10.3)
  message(STATUS "deblur_trt_plugins: skipped (TensorRT ${TensorRT_VERSION} at ${TensorRT_INCLUDE_DIR} is older "
                 "than 10.3, the first with the IPluginV3 API these plugins use)")
elseif(NOT TensorRT_NVINFER_LIBRARY AND NOT DEBLUR_TRT_WITHOUT_NVINFER)
  message(STATUS "deblur_trt_plugins: skipped (TensorRT ${TensorRT_VERSION} headers at ${TensorRT_INCLUDE_DIR} but no "
                 "libnvinfer; set -DTensorRT_ROOT, or -DDEBLUR_TRT_WITHOUT_NVINFER=ON to only compile the library)")
else()
  set(DEBLUR_PLUGIN_SOURCES
    plugins/plugin_base.cpp
    plugins/pixel_attention_plugin.cpp
    plugins/attention_fusion_plugin.cpp
    plugins/self_attention_plugin.cpp)
  add_library(deblur_trt_plugins SHARED ${DEBLUR_PLUGIN_SOURCES} plugins/plugin_library.cpp)
  # SYSTEM: TensorRT's own headers use their deprecated APIs; our code is built with -Wall -Wextra.
  target_include_directories(deblur_trt_plugins SYSTEM PRIVATE ${TensorRT_INCLUDE_DIR})
  target_include_directories(deblur_trt_plugins PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/plugins)
  target_compile_options(deblur_trt_plugins PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
  target_link_libraries(deblur_trt_plugins PRIVATE deblur_kernels CUDA::cudart)
  if(TensorRT_NVINFER_LIBRARY AND NOT DEBLUR_TRT_WITHOUT_NVINFER)
    target_link_libraries(deblur_trt_plugins PRIVATE ${TensorRT_NVINFER_LIBRARY})
  endif()
  # Only getCreators and setLoggerFinder are exported (TensorRT's plugin-library entry points).
  set_target_properties(deblur_trt_plugins PROPERTIES CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden
                                                      VISIBILITY_INLINES_HIDDEN ON)
  if(DEBLUR_TRT_WITHOUT_NVINFER)
    set(linked "not linked to libnvinfer (DEBLUR_TRT_WITHOUT_NVINFER)")
  else()
    set(linked "${TensorRT_NVINFER_LIBRARY}")
  endif()
  if(DEBLUR_BUILD_TESTS)
    add_executable(deblur_test_plugins tests/test_plugins.cpp)
    target_include_directories(deblur_test_plugins SYSTEM PRIVATE ${TensorRT_INCLUDE_DIR})
    target_link_libraries(deblur_test_plugins PRIVATE CUDA::toolkit ${CMAKE_DL_LIBS})  # headers only
    add_test(NAME deblur_plugins COMMAND deblur_test_plugins $<TARGET_FILE:deblur_trt_plugins>)

    # The plugins' enqueue with the kernels on the CPU (tests/emulate.h): no GPU, no libnvinfer.
    add_executable(deblur_test_plugins_emulated tests/test_plugins_emulated.cpp ${DEBLUR_PLUGIN_SOURCES})
    target_compile_definitions(deblur_test_plugins_emulated PRIVATE DEBLUR_EMULATE)
    target_include_directories(deblur_test_plugins_emulated PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                                    ${CMAKE_CURRENT_SOURCE_DIR}/plugins)
    target_include_directories(deblur_test_plugins_emulated SYSTEM PRIVATE ${TensorRT_INCLUDE_DIR}
                                                                           ${CUDAToolkit_INCLUDE_DIRS})
    target_link_libraries(deblur_test_plugins_emulated PRIVATE deblur_reference)
    add_test(NAME deblur_plugins_emulated COMMAND deblur_test_plugins_emulated)
  endif()
  message(STATUS "deblur_trt_plugins: TensorRT ${TensorRT_VERSION} headers at ${TensorRT_INCLUDE_DIR}, ${linked}")
endif()
