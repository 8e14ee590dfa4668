# Config tests compile src/config/*.c directly instead of linking dm_pipeline, so that they
# build while other pipeline sources are unfinished; they need only libyaml.
if(NOT TARGET PkgConfig::YAML)
  pkg_check_modules(YAML QUIET IMPORTED_TARGET yaml-0.1)
endif()
if(TARGET PkgConfig::YAML)
  file(GLOB DM_CONFIG_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/config/*.c)
  dm_add_test(test_config SOURCES config/test_config.c ${DM_CONFIG_SOURCES}
              LIBS PkgConfig::YAML LABELS unit TIMEOUT 60)
  dm_add_test(test_config_docs SOURCES config/test_config_docs.c ${DM_CONFIG_SOURCES}
              LIBS PkgConfig::YAML LABELS unit TIMEOUT 60)
else()
  message(STATUS "depthmatte: libyaml not found, config tests not built")
endif()
