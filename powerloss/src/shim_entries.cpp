// Interposed directory-entry calls (create, rename, link, unlink, mkdir, rmdir, symlink) and
// the opens that create or truncate, plus stdio's fopen/fdopen: stdio writes through internal
// calls no preload sees, so a stream opened for writing has its file's before-image journalled
// at open. Entry records are written after the call succeeded; what they need to be undone (a
// replaced or removed inode) is kept in the stash before.
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "journal_writer.hpp"
#include "real_calls.hpp"

using namespace crashkit::powerloss;

namespace {

struct Where {
  bool in_scope = false;
  std::string dir, name;
  struct stat dir_st {};
  bool existed = false;
  struct stat st {};  // the entry's inode before the call, if it existed
};

Where where(int dirfd, const char* path) {
  Where w;
  w.in_scope = split_at(dirfd, path, w.dir, w.name);
  if (!w.in_scope) return w;
  if (stat(w.dir.c_str(), &w.dir_st) != 0) w.in_scope = false;
  w.existed = lstat((w.dir + "/" + w.name).c_str(), &w.st) == 0;
  return w;
}

void record_entry(Op op, const Where& w, std::uint64_t target, std::uint64_t extra = 0) {
  append_paths(
      {.op = op, .dev = w.dir_st.st_dev, .ino = w.dir_st.st_ino, .target = target, .offset = extra},
      w.dir, w.name);
}

// After an open that may have created the file: the new entry, if it is new.
void after_create(const Where& w, int fd) {
  if (fd < 0 || !w.in_scope || w.existed) return;
  struct stat st;
  if (fstat(fd, &st) == 0) record_entry(Op::create, w, st.st_ino);
}

// Before an open with O_TRUNC of an existing file: its bytes.
void before_truncating_open(const Where& w, int flags) {
  if (!w.in_scope || !w.existed || (flags & O_TRUNC) == 0 || !S_ISREG(w.st.st_mode) ||
      w.st.st_size == 0)
    return;
  int fd = real::open((w.dir + "/" + w.name).c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return;
  FdFacts f = fd_facts(fd);
  if (f.in_scope) append_image(Op::truncate, fd, f, 0, static_cast<std::uint64_t>(f.size), 0);
  close(fd);
}

int open_common(int dirfd, const char* path, int flags, mode_t mode) {
  if (!shim_active() || (flags & (O_CREAT | O_TRUNC)) == 0 || (flags & O_TMPFILE) == O_TMPFILE)
    return real::openat_fn()(dirfd, path, flags, mode);
  Where w = where(dirfd, path);
  before_truncating_open(w, flags);
  int fd = real::openat_fn()(dirfd, path, flags, mode);
  after_create(w, fd);
  return fd;
}

mode_t mode_arg(int flags, va_list ap) {
  return (flags & (O_CREAT | O_TMPFILE)) != 0 ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

// A stdio stream opened for writing: "w" truncates (its old bytes are kept), "a" appends (the
// old size is kept), "r+" overwrites anywhere (the whole file is kept).
void before_stream(int fd, const char* mode) {
  if (std::strpbrk(mode, "wa+") == nullptr) return;
  FdFacts f = fd_facts(fd);
  if (!f.in_scope || f.directory) return;
  if (std::strchr(mode, 'a') != nullptr)
    append({.op = Op::truncate,
            .dev = f.dev,
            .ino = f.ino,
            .len = static_cast<std::uint64_t>(f.size),
            .old_size = static_cast<std::uint64_t>(f.size)});
  else
    append_image(Op::write, fd, f, 0, static_cast<std::uint64_t>(f.size),
                 static_cast<std::uint64_t>(f.size));
}

}  // namespace

#define REAL(ret, name, params) static auto real_##name = real::next<ret(*) params>(#name)

extern "C" {

int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return open_common(AT_FDCWD, path, flags, mode);
}
int open64(const char* path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return open_common(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char* path, int flags, ...) __attribute__((alias("openat")));

// _FORTIFY_SOURCE's checked opens (no mode: O_CREAT is not allowed with them).
int __open_2(const char* path, int flags) {
  return open_common(AT_FDCWD, path, flags, 0);
}
int __open64_2(const char* path, int flags) __attribute__((alias("__open_2")));
int __openat_2(int dirfd, const char* path, int flags) {
  return open_common(dirfd, path, flags, 0);
}
int __openat64_2(int dirfd, const char* path, int flags) __attribute__((alias("__openat_2")));

int creat(const char* path, mode_t mode) {
  return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
int creat64(const char* path, mode_t mode) __attribute__((alias("creat")));

FILE* fopen(const char* path, const char* mode) {
  REAL(FILE*, fopen, (const char*, const char*));
  if (!shim_active() || std::strpbrk(mode, "wa+") == nullptr) return real_fopen(path, mode);
  Where w = where(AT_FDCWD, path);
  if (w.in_scope && w.existed) {
    int fd = real::open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0) {
      before_stream(fd, mode);
      close(fd);
    }
  }
  FILE* f = real_fopen(path, mode);
  if (f != nullptr) after_create(w, fileno(f));
  return f;
}
FILE* fopen64(const char* path, const char* mode) __attribute__((alias("fopen")));

FILE* fdopen(int fd, const char* mode) {
  REAL(FILE*, fdopen, (int, const char*));
  if (shim_active()) before_stream(fd, mode);
  return real_fdopen(fd, mode);
}

int renameat2(int olddir, const char* oldpath, int newdir, const char* newpath, unsigned flags) {
  REAL(int, renameat2, (int, const char*, int, const char*, unsigned));
  Where from = where(olddir, oldpath), to = where(newdir, newpath);
  const bool journal = (from.in_scope || to.in_scope) && (flags & RENAME_EXCHANGE) == 0;
  const bool replaces = journal && to.existed && !S_ISDIR(to.st.st_mode);
  if (replaces) stash_inode(to.dir + "/" + to.name, to.st.st_dev, to.st.st_ino);
  int r = real_renameat2(olddir, oldpath, newdir, newpath, flags);
  if (r == 0 && journal && from.existed)
    append_paths({.op = Op::rename,
                  .dev = to.dir_st.st_dev,
                  .ino = to.dir_st.st_ino,
                  .target = from.st.st_ino,
                  .offset = replaces ? to.st.st_ino : 0,
                  .old_size = from.dir_st.st_ino},
                 from.dir, from.name, to.dir, to.name);
  return r;
}

int renameat(int olddir, const char* oldpath, int newdir, const char* newpath) {
  return renameat2(olddir, oldpath, newdir, newpath, 0);
}

int rename(const char* oldpath, const char* newpath) {
  return renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

int linkat(int olddir, const char* oldpath, int newdir, const char* newpath, int flags) {
  REAL(int, linkat, (int, const char*, int, const char*, int));
  Where to = where(newdir, newpath);
  int r = real_linkat(olddir, oldpath, newdir, newpath, flags);
  struct stat st;
  if (r == 0 && to.in_scope && lstat((to.dir + "/" + to.name).c_str(), &st) == 0)
    record_entry(Op::link, to, st.st_ino);
  return r;
}

int link(const char* oldpath, const char* newpath) {
  return linkat(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

int unlinkat(int dirfd, const char* path, int flags) {
  REAL(int, unlinkat, (int, const char*, int));
  Where w = where(dirfd, path);
  const bool dir = (flags & AT_REMOVEDIR) != 0;
  if (w.in_scope && w.existed && !dir) stash_inode(w.dir + "/" + w.name, w.st.st_dev, w.st.st_ino);
  int r = real_unlinkat(dirfd, path, flags);
  if (r == 0 && w.in_scope && w.existed)
    record_entry(dir ? Op::rmdir : Op::unlink, w, w.st.st_ino, w.st.st_mode);
  return r;
}

int unlink(const char* path) {
  return unlinkat(AT_FDCWD, path, 0);
}

int rmdir(const char* path) {
  return unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  REAL(int, mkdirat, (int, const char*, mode_t));
  Where w = where(dirfd, path);
  int r = real_mkdirat(dirfd, path, mode);
  struct stat st;
  if (r == 0 && w.in_scope && lstat((w.dir + "/" + w.name).c_str(), &st) == 0)
    record_entry(Op::mkdir, w, st.st_ino, st.st_mode);
  return r;
}

int mkdir(const char* path, mode_t mode) {
  return mkdirat(AT_FDCWD, path, mode);
}

int symlinkat(const char* target, int dirfd, const char* path) {
  REAL(int, symlinkat, (const char*, int, const char*));
  Where w = where(dirfd, path);
  int r = real_symlinkat(target, dirfd, path);
  struct stat st;
  if (r == 0 && w.in_scope && lstat((w.dir + "/" + w.name).c_str(), &st) == 0)
    record_entry(Op::create, w, st.st_ino);
  return r;
}

int symlink(const char* target, const char* path) {
  return symlinkat(target, AT_FDCWD, path);
}

}  // extern "C"
