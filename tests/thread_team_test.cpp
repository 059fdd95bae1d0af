// ThreadTeam (src/core/thread_team.h): every thread runs the job, the barrier orders memory between
// phases, jobs run back to back, and a team survives waits long enough to put its threads to sleep.
#include "core/thread_team.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace diffuse {
namespace {

TEST(ThreadTeam, EveryThreadRunsTheJobOnceWithItsOwnIndex) {
  for (int n : {1, 2, 3, 5}) {
    ThreadTeam team(n);
    EXPECT_EQ(team.size(), n);
    std::vector<int> calls(n, 0);
    std::vector<std::thread::id> ids(n);
    auto job = [&](int p) {
      ++calls[p];
      ids[p] = std::this_thread::get_id();
    };
    team.run(job);
    for (int p = 0; p < n; ++p) EXPECT_EQ(calls[p], 1) << "n=" << n << " p=" << p;
    EXPECT_EQ(ids[0], std::this_thread::get_id()) << "p = 0 runs on the caller";
    for (int p = 1; p < n; ++p) EXPECT_NE(ids[p], ids[0]);
  }
}

// Each phase reads what the other threads wrote in the phase before: without a working barrier the
// sums come out wrong (a thread would read a slot before it is written, or after it is rewritten).
TEST(ThreadTeam, BarrierOrdersPhasesOverManyRounds) {
  constexpr int kThreads = 3, kRounds = 5000;
  ThreadTeam team(kThreads);
  std::vector<long> slot(kThreads, 0), seen(kThreads, 0);
  auto job = [&](int p) {
    for (int r = 1; r <= kRounds; ++r) {
      slot[p] = static_cast<long>(r) * (p + 1);
      team.sync();
      long sum = 0;
      for (int q = 0; q < kThreads; ++q) sum += slot[q];
      if (sum == static_cast<long>(r) * (1 + 2 + 3)) ++seen[p];
      team.sync();  // nobody rewrites its slot before everyone has read this round's
    }
  };
  team.run(job);
  for (int p = 0; p < kThreads; ++p) EXPECT_EQ(seen[p], kRounds) << "thread " << p;
}

TEST(ThreadTeam, JobsRunBackToBackAndAfterTheWorkersHaveFallenAsleep) {
  ThreadTeam team(2);
  long total = 0;
  std::vector<long> part(2, 0);
  auto job = [&](int p) {
    part[p] += p + 1;
    team.sync();
    if (p == 0) total = part[0] + part[1];
  };
  for (int i = 0; i < 1000; ++i) team.run(job);
  EXPECT_EQ(total, 3000);
  // Far longer than any spin: the worker is asleep on the futex and must be woken.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  team.run(job);
  EXPECT_EQ(total, 3003);
  // A barrier wait inside a job that outlasts the spin: the early thread sleeps, then wakes.
  auto slow = [&](int p) {
    if (p == 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    part[p] += 10;
    team.sync();
    if (p == 0) total = part[0] + part[1];
  };
  team.run(slow);
  EXPECT_EQ(total, 3023);
}

}  // namespace
}  // namespace diffuse
