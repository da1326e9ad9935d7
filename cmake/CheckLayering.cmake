# Fails the build when a core source includes <zmq.hpp>, <zmq.h> or <sqlite3.h>.
# Allowed: storage/ (owns SQLite), any */zmq/ directory (the ZeroMQ adapter), */app/ (executables), tests/.
file(GLOB_RECURSE files
  ${SRC}/clock/*.h ${SRC}/clock/*.cpp ${SRC}/dtn/*.h ${SRC}/dtn/*.cpp
  ${SRC}/coordinator/*.h ${SRC}/coordinator/*.cpp ${SRC}/rover_agent/*.h ${SRC}/rover_agent/*.cpp
  ${SRC}/scenarios/*.h ${SRC}/scenarios/*.cpp)
set(bad "")
foreach(f IN LISTS files)
  if(f MATCHES "/zmq/" OR f MATCHES "/app/")
    continue()
  endif()
  file(STRINGS ${f} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](zmq\\.hpp|zmq\\.h|zmq_addon\\.hpp|sqlite3\\.h)[>\"]")
  if(hits)
    list(APPEND bad "${f}: ${hits}")
  endif()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " msg "${bad}")
  message(FATAL_ERROR "layering: a sans-I/O core includes an I/O library header:\n  ${msg}\n"
                      "Move that code into storage/, a */zmq/ adapter or an app/.")
endif()
