# Sourced by bench/gpu-bench.sh before it runs on an NVIDIA GPU: NVIDIA's Vulkan ICD file names the GLX library,
# which needs an X display; its EGL library is the headless Vulkan driver.
egl=$(ldconfig -p | awk '/libEGL_nvidia.so.0/ {print $NF; exit}')
if [ -n "$egl" ]; then
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3"}}' "$egl" > /tmp/nvidia_egl_icd.json
  export VK_DRIVER_FILES=/tmp/nvidia_egl_icd.json
fi
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
