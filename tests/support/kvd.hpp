// kvd as a `crashkit run` target: its data in {data_dir}, its socket in {run_dir}, a checkpoint
// every 6 writes (so a 16-put workload crosses checkpoints). For tests that run kvd directly.
//
//   auto argv = test::with_kvd({kCli, "run", "--fault", "powerloss", "--"}, CRASHKIT_KVD);
#pragma once

#include <string>
#include <vector>

namespace crashkit::test {

// `head` (ending in "--"), then kvd's command line with `kvd` as the binary.
inline std::vector<std::string> with_kvd(std::vector<std::string> head, const std::string& kvd) {
  head.insert(head.end(), {kvd, "--data-dir", "{data_dir}", "--socket", "{run_dir}/kvd.sock",
                           "--checkpoint-every", "6"});
  return head;
}

}  // namespace crashkit::test
