// A 128-bit integer for exact intermediate products of millisecond counts (e.g. ms x ppb), which
// can pass INT64_MAX. __extension__ keeps -Wpedantic quiet about the GCC/Clang built-in type.
#pragma once

namespace ics::clock {
__extension__ typedef __int128 Int128;
}  // namespace ics::clock
