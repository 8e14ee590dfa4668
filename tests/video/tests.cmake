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
if(DM_WITH_PIPELINE AND TARGET depthmatte)
  add_test(NAME test_video_probe_cli
           COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/probe_cli_test.sh $<TARGET_FILE:depthmatte>
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_video_probe_cli PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120
                       LABELS "decode")
endif()
if(DM_WITH_PIPELINE)
  dm_add_test(test_video_select SOURCES video/test_video_select.c ${DM_VIDEO_TEST_UTIL}
              LIBS dm_pipeline LABELS decode TIMEOUT 300)
endif()
