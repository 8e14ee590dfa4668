# Sourced by prepare_device_check.sh and device_check.sh: which shared libraries the pipeline
# bundle (docs/gpu.md, "The prepared device check") takes from the machine it runs on, and which it
# replaces with stand-ins (tests/gpu/make_stub_lib.py). One list, so the bundle that is made and
# the check that it loads nothing else from the system cannot drift apart.

# Taken from the running machine, never bundled: glibc (the device's is newer), the compiler
# runtime (the device has gcc, whose libstdc++/libgcc_s/libgomp are newer than Debian 12's and
# backward compatible) and CUDA (the device's toolkit and PyTorch wheels: cudart, cuBLAS(Lt),
# cuDNN, the driver).
dm_bundle_system_re='/(libc|libm|libdl|libpthread|librt|libresolv|libmvec|libutil|ld-linux-x86-64)\.so|/(libstdc\+\+|libgcc_s|libgomp)\.so'
dm_bundle_cuda_re='lib(cuda|cudart|cublas|cublasLt|cudnn[a-z_]*|nvidia-[a-z]*|nvrtc|nvJitLink)\.so'

# Libraries that Debian's FFmpeg names as NEEDED (BIND_NOW: each must exist) but that the
# check's code path (decode of an H.264 clip, no text/subtitle/encode paths) never calls, and
# that cost most of the bundle (sizes: Debian 12, xz -0): ICU's data (29.8 MiB raw, 9.1 MiB
# xz; used by libxml2's encoding conversions), codec2 (16.1 / 9.0 MiB, the codec2 speech codec),
# librsvg (10.6 / 2.8 MiB, SVG decoding; its cairo/pango/glib closure drops out with it), SVT-AV1
# (6.4 / 2.3 MiB, an AV1 encoder). Not stubbed: libraries FFmpeg calls while it registers its
# codecs (init_static_data runs for every codec at the first lookup): libaom (aom_codec_version)
# and libx265 (x265_api_get), found by running the check with them stubbed.
dm_bundle_stub_re='/(libicudata|libcodec2|librsvg-2|libSvtAv1Enc)\.so'

# dm_bundle_outside LIBDIR OBJ...: prints each library that OBJ... would load from outside
# LIBDIR (with LD_LIBRARY_PATH=LIBDIR plus what the caller exported), except the system and
# CUDA ones above; "NAME => not found" lines for missing non-CUDA libraries.
dm_bundle_outside() {
  local libdir=$1
  shift
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$@" 2>/dev/null |
    awk -v d="$libdir/" '$2 == "=>" && $3 == "not" {print $1, "=> not found"}
      $2 == "=>" && $3 ~ /^\// && index($3, d) != 1 {print $1, "=>", $3}' |
    grep -v -E "$dm_bundle_system_re" | grep -v -E "$dm_bundle_cuda_re" | sort -u || true
}
