// `crashkit matrix --html`: the report is one self-contained file, and it renders in headless
// Chromium (Debian's chromium package, installed by scripts/setup) to a screenshot that shows
// the grid in the outcome colours, not a blank page.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../support/cli_runner.hpp"
#include "../support/png.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class HtmlReport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ck-html-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    html_ = dir_ / "report.html";
    // A third of kvd's default matrix with a planted bug: both passes and findings to draw.
    auto r = test::run_cli(
        {CRASHKIT_CLI, "matrix", "-q", "-j", "2", "--seed", "3", "--shard", "0/3",
         CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix.yaml", "--html", html_.string()},
        5min,
        {"PATH=" + fs::path(CRASHKIT_KVD).parent_path().string() + ":" + getenv("PATH"),
         "KVD_BUG=replay-off-by-one"});
    ASSERT_EQ(r.code(), 1) << r.output;  // findings
    std::ifstream in(html_);
    html_text_.assign(std::istreambuf_iterator<char>(in), {});
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_, html_;
  std::string html_text_;
};

TEST_F(HtmlReport, IsSelfContainedWithFindingsGridAndPlot) {
  ASSERT_FALSE(html_text_.empty());
  for (auto forbidden : {"http://", "https://", "<script", "src=", "@import", "url("})
    EXPECT_EQ(html_text_.find(forbidden), std::string::npos) << "fetches or runs: " << forbidden;
  EXPECT_NE(html_text_.find("Findings ("), std::string::npos);
  EXPECT_NE(html_text_.find("<code>crashkit run --"), std::string::npos);  // repro lines
  EXPECT_NE(html_text_.find("aria-label=\"cells by point and crossing\""), std::string::npos);
  EXPECT_NE(html_text_.find("aria-label=\"recovery time per cell\""), std::string::npos);
  EXPECT_NE(html_text_.find("wal.append.write"), std::string::npos);
}

TEST_F(HtmlReport, RendersInHeadlessChromium) {
  auto chromium = resolve_executable("chromium");
  ASSERT_TRUE(chromium) << "chromium not found; scripts/setup installs Debian's chromium package";
  auto png = dir_ / "shot.png";
  auto r = test::run_cli(
      {*chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
       "--disable-extensions", "--no-first-run", "--hide-scrollbars",
       "--user-data-dir=" + (dir_ / "profile").string(), "--window-size=1200,900",
       "--screenshot=" + png.string(), "file://" + html_.string()},
      3min, {"HOME=" + dir_.string()});
  ASSERT_EQ(r.code(), 0) << r.output;
  auto img = test::read_png(png.string());
  ASSERT_TRUE(img) << "not a readable 8-bit PNG: " << png;
  EXPECT_EQ(img->width, 1200u);
  EXPECT_EQ(img->height, 900u);
  // Ink, and the outcome colours of the grid and plot (pass #2e7d32, violation #c62828).
  std::size_t ink = 0, green = 0, red = 0;
  auto near = [](const std::array<std::uint8_t, 3>& p, int r, int g, int b) {
    return std::abs(p[0] - r) < 12 && std::abs(p[1] - g) < 12 && std::abs(p[2] - b) < 12;
  };
  for (const auto& p : img->pixels) {
    ink += p[0] < 200 || p[1] < 200 || p[2] < 200;
    green += near(p, 0x2e, 0x7d, 0x32);
    red += near(p, 0xc6, 0x28, 0x28);
  }
  double ink_share = static_cast<double>(ink) / img->pixels.size();
  EXPECT_GT(ink_share, 0.02) << "screenshot is (nearly) blank";
  EXPECT_LT(ink_share, 0.9) << "screenshot is (nearly) solid";
  EXPECT_GT(green, 500u) << "no pass-coloured cells drawn";
  EXPECT_GT(red, 500u) << "no violation-coloured cells drawn";
}

}  // namespace
}  // namespace crashkit
