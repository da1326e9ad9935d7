# Helpers shared by the component CMakeLists.
#
# ics_component(NAME <name> DEPS <targets...> [PRIVATE_DEPS <targets...>])
#   A static library ics_<name> (alias ics::<name>) from <name>/src/*.cpp with public headers in
#   <name>/include/<name>/. Sources are globbed so that adding a file needs no CMake edit.
function(ics_component)
  cmake_parse_arguments(C "" "NAME;DIR" "DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT C_DIR)
    set(C_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  file(GLOB srcs CONFIGURE_DEPENDS ${C_DIR}/src/*.cpp)
  if(NOT srcs)
    message(STATUS "component ${C_NAME}: no sources, no library")
    return()
  endif()
  add_library(ics_${C_NAME} STATIC ${srcs})
  add_library(ics::${C_NAME} ALIAS ics_${C_NAME})
  target_include_directories(ics_${C_NAME} PUBLIC ${C_DIR}/include PRIVATE ${C_DIR}/src)
  target_link_libraries(ics_${C_NAME} PUBLIC ${C_DEPS} PRIVATE ${C_PRIVATE_DEPS})
  set_property(GLOBAL APPEND PROPERTY ICS_CORE_DIRS_${C_NAME} ${C_DIR})
endfunction()

# ics_tool(NAME <exe> [MIMALLOC] SOURCES <files...> DEPS <targets...>)
#   MIMALLOC: the executable runs on mimalloc (Microsoft's allocator, Debian's libmimalloc-dev),
#   linked first so that it replaces malloc and operator new for the whole process, and defines
#   ICS_WITH_MIMALLOC. For the node daemons and the replayer, which make and free a few small
#   objects per bundle: measured, 1 KiB bundles through the chain bench cost ~25 % less CPU
#   (53 -> 38-42 us per bundle over five processes) and the year-long replay ~7 % less (README,
#   "Benchmarks"). Sanitizer builds keep the sanitizers' allocator.
function(ics_tool)
  cmake_parse_arguments(T "MIMALLOC" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  if(T_MIMALLOC AND NOT ICS_SANITIZE)
    find_package(mimalloc REQUIRED)
    list(PREPEND T_DEPS mimalloc)
    target_compile_definitions(${T_NAME} PRIVATE ICS_WITH_MIMALLOC)
  endif()
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS})
endfunction()

# The sans-I/O rule, enforced: core sources may not include ZeroMQ or SQLite headers. Only
# storage/ (SQLite), dtn/zmq/ (the ZeroMQ link), executables (app/) and tests may. The check runs
# at every build and fails it, naming the offending line.
function(ics_check_layering)
  add_custom_target(layering_check ALL
    COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -P ${CMAKE_SOURCE_DIR}/cmake/CheckLayering.cmake
    COMMENT "Checking that the sans-I/O cores include no ZeroMQ or SQLite headers"
    VERBATIM)
endfunction()
