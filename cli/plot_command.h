// What plot_command.cpp offers other commands besides `diffuse plot` and `diffuse animate`: the
// training-snapshot hook (reverse strips every N epochs). Orchestration only; drawing is in plot.h.
#pragma once

#include <cstdint>
#include <string>

#include "common.h"

namespace diffuse::cli {

// A run_training hook that, every `every` epochs, samples n points from the current weights
// (recording the trajectory) and writes the reverse strip DIR/reverse_epoch_NNNN.png. Throws
// UsageError naming --snapshot-every / --snapshot-dir when every < 1 or dir is not a writable
// folder.
ExtraEpochHook reverse_snapshot_hook(const std::string& dir, int every, int n, uint64_t seed,
                                     int threads);

}  // namespace diffuse::cli
