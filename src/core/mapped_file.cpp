#include "core/mapped_file.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace osprey {

namespace {
struct Adopted {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<MappedFile>> by_name;
};
Adopted& adopted() {
  static Adopted a;
  return a;
}
}  // namespace

void MappedFile::adopt(const std::string& name, uint8_t* data, size_t size) {
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = name;
  file->data_ = data;
  file->size_ = size;
  file->adopted_ = true;
  std::lock_guard<std::mutex> lock(adopted().mutex);
  adopted().by_name[name] = std::move(file);
}

void MappedFile::forget(const std::string& name) {
  std::lock_guard<std::mutex> lock(adopted().mutex);
  adopted().by_name.erase(name);
}

Expected<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(adopted().mutex);
    if (auto it = adopted().by_name.find(path); it != adopted().by_name.end()) return it->second;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return IoError(path + ": cannot mmap: " + std::strerror(err));
    }
    file->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (adopted_) std::free(const_cast<uint8_t*>(data_));
  else if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace osprey
