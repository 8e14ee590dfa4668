# Video probing/decoding (src/video). Needs the pipeline build (FFmpeg) and the real clips in
# ../shared/videos (tests skip loudly without them); the ffmpeg/ffprobe CLIs give the
# expected frame counts and reference RGB bytes at test time.
if(DM_WITH_PIPELINE)
  set(DM_VIDEO_TEST_UTIL video/video_test_util.c)
  dm_add_test(test_video_decode SOURCES video/test_video_decode.c ${DM_VIDEO_TEST_UTIL}
              LIBS dm_pipeline LABELS decode TIMEOUT 900)
endif()
if(DM_WITH_PIPELINE)
  dm_add_test(test_video_odd SOURCES video/test_video_odd.c ${DM_VIDEO_TEST_UTIL}
              LIBS dm_pipeline LABELS decode TIMEOUT 300)
endif()
if(DM_WITH_PIPELINE)
  dm_add_test(test_video_errors SOURCES video/test_video_errors.c ${DM_VIDEO_TEST_UTIL}
              LIBS dm_pipeline LABELS unit decode TIMEOUT 300)
endif()
