#pragma once

#include <signal.h>

namespace graydebug {

// SIGTERM and SIGINT: what ends every graydebug process cleanly.
sigset_t StopSignals();
// Blocks the stop signals in the calling thread and every thread it starts later. Call it in
// main() before any thread exists, then take them with WaitForStopSignal (or a signalfd).
void BlockStopSignals();
// Blocks until SIGTERM or SIGINT arrives; returns its name ("SIGTERM" or "SIGINT").
const char* WaitForStopSignal();

}  // namespace graydebug
