// Private to DiskFill: --disk-full ext4:SIZE, an ext4 file system in an image file, attached to a
// loop device and mounted on the data dir, for real block allocation, journaling and fsync.
//
//   if (auto ok = mount_ext4_image(run.root / "disk-full.ext4", 64 << 20, run.data); !ok) ...
//
// The loop device is attached with LO_FLAGS_AUTOCLEAR: it detaches itself when the file system
// is unmounted, so no loop device outlives the mount (not even when crashkit is killed and the
// mount is lazily unmounted later).
#pragma once

#include <cstdint>
#include <filesystem>

#include "crashkit/harness/result.hpp"

namespace crashkit::detail {

// Creates `image` (sparse, `size` bytes), makes an ext4 file system in it (mkfs.ext4, its
// output in `image`.log), and mounts it on `target` (nosuid, nodev) with lost+found removed.
// Errors name the step and the fix (root, e2fsprogs, /dev/loop-control).
Status mount_ext4_image(const std::filesystem::path& image, std::uint64_t size,
                        const std::filesystem::path& target);

}  // namespace crashkit::detail
