// A minimal PNG reader for render tests: 8-bit RGB or RGBA, not interlaced (what Chromium's
// --screenshot writes). Returns RGB pixels, or nothing for anything else.
#pragma once

#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace crashkit::test {

struct Image {
  std::uint32_t width = 0, height = 0;
  std::vector<std::array<std::uint8_t, 3>> pixels;  // row-major
};

inline std::optional<Image> read_png(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::string d(std::istreambuf_iterator<char>(in), {});
  auto u32 = [&](std::size_t at) {
    auto b = [&](std::size_t i) {
      return static_cast<std::uint32_t>(static_cast<std::uint8_t>(d[at + i]));
    };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
  };
  if (d.size() < 33 || d.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return std::nullopt;
  Image img;
  int channels = 0;
  std::string idat;
  for (std::size_t at = 8; at + 12 <= d.size();) {
    std::uint32_t len = u32(at);
    std::string type = d.substr(at + 4, 4);
    if (at + 12 + len > d.size()) return std::nullopt;
    if (type == "IHDR") {
      img.width = u32(at + 8);
      img.height = u32(at + 12);
      int depth = d[at + 16], colour = d[at + 17], interlace = d[at + 20];
      if (depth != 8 || interlace != 0 || (colour != 2 && colour != 6)) return std::nullopt;
      channels = colour == 2 ? 3 : 4;
    } else if (type == "IDAT") {
      idat += d.substr(at + 8, len);
    }
    at += 12 + len;
  }
  if (channels == 0) return std::nullopt;
  const std::size_t stride = img.width * channels;
  std::vector<std::uint8_t> raw((stride + 1) * img.height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) !=
          Z_OK ||
      raw_len != raw.size())
    return std::nullopt;
  std::vector<std::uint8_t> prev(stride, 0), cur(stride);
  for (std::uint32_t y = 0; y < img.height; ++y) {
    const std::uint8_t* line = &raw[y * (stride + 1)];
    for (std::size_t x = 0; x < stride; ++x) {
      int a = x >= static_cast<std::size_t>(channels) ? cur[x - channels] : 0, b = prev[x],
          c = x >= static_cast<std::size_t>(channels) ? prev[x - channels] : 0;
      int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
      int pred = 0;
      switch (line[0]) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = (a + b) / 2;
          break;
        case 4:
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        default:
          return std::nullopt;
      }
      cur[x] = static_cast<std::uint8_t>(line[1 + x] + pred);
    }
    for (std::uint32_t x = 0; x < img.width; ++x)
      img.pixels.push_back({cur[x * channels], cur[x * channels + 1], cur[x * channels + 2]});
    prev = cur;
  }
  return img;
}

}  // namespace crashkit::test
