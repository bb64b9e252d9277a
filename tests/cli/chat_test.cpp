// `osprey chat` driven through a real pseudo-terminal (tmux): replies stream
// with a tokens/s line, Ctrl-C stops a reply without quitting, and the
// commands /save, /load, /reset and /system work.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace osprey {
namespace {

class ChatSession {
 public:
  explicit ChatSession(const std::string& args) {
    session_ = "osprey-chat-" + std::to_string(::getpid());
    // A tmux server of this test's own (-L): with the default shared server,
    // one test's kill-session could stop the server while another test's
    // new-session was connecting to it.
    tmux_ = "tmux -L " + session_ + " ";
    log_ = ::testing::TempDir() + session_ + ".log";
    std::remove(log_.c_str());
    test::run_command(tmux_ + "kill-server");
    // The session waits for a line before starting chat, so that the log
    // is attached before the first output (the banner and prompt).
    const std::string cmd = "read _; exec " + test::osprey_binary() + " chat " + args + " 2>/dev/null";
    test::run_command(tmux_ + "new-session -d -s " + session_ + " -x 200 -y 50 '" + cmd + "'");
    test::run_command(tmux_ + "pipe-pane -o -t " + session_ + " 'cat >> " + log_ + "'");
    enter();
  }
  ~ChatSession() { test::run_command(tmux_ + "kill-server"); }

  void type(const std::string& text) { test::run_command(tmux_ + "send-keys -t " + session_ + " -l '" + text + "'"); }
  void enter() { test::run_command(tmux_ + "send-keys -t " + session_ + " Enter"); }
  void ctrl_c() { test::run_command(tmux_ + "send-keys -t " + session_ + " C-c"); }
  void say(const std::string& text) {
    type(text);
    enter();
  }
  // Waits until the output holds `needle` `count` times.
  bool wait_for(const std::string& needle, int count = 1, int timeout_ms = 20000) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
      const std::string out = test::read_file(log_);
      int n = 0;
      for (size_t p = out.find(needle); p != std::string::npos; p = out.find(needle, p + 1)) ++n;
      if (n >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  bool alive() { return test::run_command(tmux_ + "has-session -t " + session_).exit_code == 0; }

 private:
  std::string session_, tmux_, log_;
};

TEST(Chat, ThroughAPseudoTerminal) {
  if (test::run_command("tmux -V").exit_code != 0) GTEST_SKIP() << "tmux is not installed (scripts/setup.sh installs it)";
  const std::string model = test::synth_model("tiny-qwen2", "q8_0");
  const std::string dir = ::testing::TempDir();
  ChatSession chat("-m " + model + " -n 12 --temp 0 -c 4096");
  ASSERT_TRUE(chat.wait_for("> ")) << "no prompt";

  chat.say("Hello there");
  ASSERT_TRUE(chat.wait_for(" tokens/s")) << "no reply statistics";
  chat.say("/save " + dir + "chat1.json");
  ASSERT_TRUE(chat.wait_for("(saved 2 messages)"));
  auto saved = nlohmann::json::parse(test::read_file(dir + "chat1.json"));
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0]["role"], "user");
  EXPECT_EQ(saved[0]["content"], "Hello there");
  EXPECT_EQ(saved[1]["role"], "assistant");

  chat.say("/system Be brief.");
  ASSERT_TRUE(chat.wait_for("(system prompt set"));
  chat.say("/save " + dir + "chat2.json");
  ASSERT_TRUE(chat.wait_for("(saved 1 messages)"));
  EXPECT_EQ(nlohmann::json::parse(test::read_file(dir + "chat2.json"))[0]["content"], "Be brief.");

  chat.say("/load " + dir + "chat1.json");
  ASSERT_TRUE(chat.wait_for("(loaded 2 messages)"));
  chat.say("/reset");
  ASSERT_TRUE(chat.wait_for("(conversation cleared)"));
  chat.say("/bogus");
  ASSERT_TRUE(chat.wait_for("(unknown command"));
  EXPECT_TRUE(chat.alive());
}

TEST(Chat, CtrlCStopsTheReplyButNotTheChat) {
  if (test::run_command("tmux -V").exit_code != 0) GTEST_SKIP() << "tmux is not installed (scripts/setup.sh installs it)";
  // A reply long enough to interrupt: up to the whole context.
  const std::string model = test::synth_model("smollm2-135m", "q8_0");
  const std::string dir = ::testing::TempDir();
  ChatSession chat("-m " + model + " -n 2000 --temp 0 -c 2048 -t 2");
  ASSERT_TRUE(chat.wait_for("> ", 1, 60000)) << "no prompt";
  chat.say("Talk for a long time");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  chat.ctrl_c();
  ASSERT_TRUE(chat.wait_for("(stopped)", 1, 30000)) << "Ctrl-C did not stop the reply";
  EXPECT_TRUE(chat.alive());
  chat.say("/save " + dir + "chat3.json");
  ASSERT_TRUE(chat.wait_for("(saved 2 messages)"));
  chat.say("/quit");
  for (int i = 0; i < 100 && chat.alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(chat.alive());
}

}  // namespace
}  // namespace osprey
