// kernelgen: turns one kernel description (src/backends/kernels/*.kern) into
// the two shader languages the GPU back ends run, so that Vulkan and WebGPU
// execute the same source and cannot drift apart.
//
//   kernelgen glsl  NAME.kern OUT.comp   GLSL 4.50 compute shader (glslc makes SPIR-V of it)
//   kernelgen wgsl  NAME.kern OUT.wgsl   WGSL compute shader
//   kernelgen table OUT.cpp NAME.kern NAME.spv ...   the C++ table of every kernel ("-" for NAME.spv: WGSL only):
//       name, buffer count, parameter bytes, SPIR-V words and WGSL text
//
// A description is a small, strict subset of WGSL with a header:
//   kernel NAME                       must match the file name
//   workgroup N                       threads per workgroup (x only)
//   buffer read|read_write NAME: f32|u32|i32
//   param NAME: f32|u32|i32           32-bit parameters (push constants / a uniform)
//   shared NAME: array<T, N>          workgroup memory (T a scalar or vecN<T>)
//   alias NAME = TYPE                 a type name, so that one helper serves
//                                     skeletons whose types differ (matmul's
//                                     one token, f32, and four, vec4<f32>)
//   include FILE                      another description's lines, textually
//   fn NAME(a: T, ...) -> T { ... }   helpers; the block ends at a line "}"
//   main { ... }                      the entry point; it sees wg_id and lid
// Bodies are WGSL. The GLSL writer rewrites declarations (let/var with a
// type), helper signatures, vecN<T>, bitcast<T> and builtin names; anything
// else must already mean the same in both languages (the descriptions keep
// to that subset: explicit types, u suffixes, no select, no implicit casts).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Buffer {
  std::string name, type;
  bool writable;
};
struct Field {
  std::string name, type;
};
struct Kernel {
  std::string name;
  int workgroup = 64;
  std::vector<Buffer> buffers;
  std::vector<Field> params;
  std::vector<Field> shared;  // type is "array<T, N>"
  std::vector<Field> aliases;
  std::vector<std::string> fns;
  std::string main;
};

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  std::cerr << "kernelgen: " << where << ": " << what << "\n";
  std::exit(1);
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string stem_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base.substr(0, base.find('.'));
}

Field parse_field(const std::string& text, const std::string& where) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) fail(where, "expected NAME: TYPE in \"" + text + "\"");
  return {trim(text.substr(0, colon)), trim(text.substr(colon + 1))};
}

void parse_into(Kernel& k, const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot open");
  std::string line;
  int line_no = 0;
  std::string* block = nullptr;  // the fn/main body being read
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = path + ":" + std::to_string(line_no);
    if (block != nullptr) {
      if (trim(line) == "}" && !line.empty() && line[0] == '}') {
        *block += "}\n";
        block = nullptr;
      } else {
        *block += line + "\n";
      }
      continue;
    }
    const std::string t = trim(line);
    if (t.empty() || t.rfind("//", 0) == 0) continue;
    std::istringstream words(t);
    std::string word;
    words >> word;
    std::string rest;
    std::getline(words, rest);
    rest = trim(rest);
    if (word == "kernel") {
      k.name = rest;
    } else if (word == "workgroup") {
      k.workgroup = std::stoi(rest);
    } else if (word == "buffer") {
      std::istringstream r(rest);
      std::string access;
      r >> access;
      std::string decl;
      std::getline(r, decl);
      if (access != "read" && access != "read_write") fail(where, "buffer access must be read or read_write");
      const Field f = parse_field(decl, where);
      k.buffers.push_back({f.name, f.type, access == "read_write"});
    } else if (word == "param") {
      k.params.push_back(parse_field(rest, where));
    } else if (word == "shared") {
      k.shared.push_back(parse_field(rest, where));
    } else if (word == "alias") {
      const size_t eq = rest.find('=');
      if (eq == std::string::npos) fail(where, "expected alias NAME = TYPE");
      k.aliases.push_back({trim(rest.substr(0, eq)), trim(rest.substr(eq + 1))});
    } else if (word == "include") {
      parse_into(k, dir_of(path) + "/" + rest);
    } else if (word == "fn") {
      k.fns.push_back(t + "\n");
      block = &k.fns.back();
    } else if (word == "main") {
      if (!k.main.empty()) fail(where, "a second main");
      k.main = "{\n";
      block = &k.main;
    } else {
      fail(where, "unknown directive \"" + word + "\"");
    }
  }
  if (block != nullptr) fail(path, "a block is not closed by a line \"}\"");
}

Kernel parse(const std::string& path) {
  Kernel k;
  parse_into(k, path);
  if (k.name != stem_of(path)) fail(path, "kernel name \"" + k.name + "\" differs from the file name");
  if (k.main.empty()) fail(path, "no main");
  for (const Field& p : k.params)
    if (p.type != "f32" && p.type != "u32" && p.type != "i32") fail(path, "parameter " + p.name + " is not 32-bit");
  return k;
}

// WGSL scalar and vector types in GLSL spelling.
std::string glsl_type(std::string t) {
  t = std::regex_replace(t, std::regex(R"(vec([234])<f32>)"), "vec$1");
  t = std::regex_replace(t, std::regex(R"(vec([234])<u32>)"), "uvec$1");
  t = std::regex_replace(t, std::regex(R"(vec([234])<i32>)"), "ivec$1");
  if (t == "f32") return "float";
  if (t == "u32") return "uint";
  if (t == "i32") return "int";
  if (t == "bool") return "bool";
  return t;
}

std::string glsl_body(std::string s) {
  // let/var NAME: TYPE = ...  ->  TYPE NAME = ...
  const std::regex decl(R"(\b(?:let|var)\s+(\w+)\s*:\s*([\w<>]+)\s*=)");
  std::string out;
  std::sregex_iterator it(s.begin(), s.end(), decl), end;
  size_t last = 0;
  for (; it != end; ++it) {
    out += s.substr(last, it->position() - last);
    out += glsl_type((*it)[2]) + " " + (*it)[1].str() + " =";
    last = it->position() + it->length();
  }
  out += s.substr(last);
  s = out;
  if (std::regex_search(s, std::regex(R"(\b(?:let|var)\s+\w+\s*=)")))
    fail("body", "a let/var without a type (the GLSL writer needs it)");
  s = std::regex_replace(s, std::regex(R"(vec([234])<f32>)"), "vec$1");
  s = std::regex_replace(s, std::regex(R"(vec([234])<u32>)"), "uvec$1");
  s = std::regex_replace(s, std::regex(R"(vec([234])<i32>)"), "ivec$1");
  s = std::regex_replace(s, std::regex(R"(bitcast<f32>\()"), "uintBitsToFloat(");
  s = std::regex_replace(s, std::regex(R"(bitcast<u32>\()"), "floatBitsToUint(");
  s = std::regex_replace(s, std::regex(R"(\bf32\()"), "float(");
  s = std::regex_replace(s, std::regex(R"(\bu32\()"), "uint(");
  s = std::regex_replace(s, std::regex(R"(\bi32\()"), "int(");
  s = std::regex_replace(s, std::regex(R"(\bworkgroupBarrier\(\))"), "barrier()");
  s = std::regex_replace(s, std::regex(R"(\binverseSqrt\()"), "inversesqrt(");
  s = std::regex_replace(s, std::regex(R"(\bunpack2x16float\()"), "unpackHalf2x16(");
  s = std::regex_replace(s, std::regex(R"(\bpack2x16float\()"), "packHalf2x16(");
  s = std::regex_replace(s, std::regex(R"(\bwg_id\b)"), "gl_WorkGroupID");
  s = std::regex_replace(s, std::regex(R"(\blid\b)"), "gl_LocalInvocationID");
  return s;
}

std::string glsl_fn(const std::string& fn) {
  // fn NAME(a: T, b: U) -> R {  ->  R NAME(T a, U b) {
  const std::regex sig(R"(fn\s+(\w+)\s*\(([^)]*)\)\s*(?:->\s*([\w<>]+))?\s*\{)");
  std::smatch m;
  if (!std::regex_search(fn, m, sig)) fail("fn", "cannot read the signature of: " + fn.substr(0, fn.find('\n')));
  std::string args;
  std::stringstream list(m[2].str());
  std::string arg;
  while (std::getline(list, arg, ',')) {
    if (trim(arg).empty()) continue;
    const Field f = parse_field(arg, "fn " + m[1].str());
    args += (args.empty() ? "" : ", ") + glsl_type(f.type) + " " + f.name;
  }
  const std::string ret = m[3].matched ? glsl_type(m[3]) : "void";
  return ret + " " + m[1].str() + "(" + args + ") {" + glsl_body(m.suffix());
}

std::string to_glsl(const Kernel& k) {
  std::ostringstream o;
  o << "// Generated by kernelgen from " << k.name << ".kern. Do not edit.\n";
  o << "#version 450\n";
  o << "layout(local_size_x = " << k.workgroup << ") in;\n";
  for (const Field& a : k.aliases) o << "#define " << a.name << " " << glsl_type(a.type) << "\n";
  for (size_t i = 0; i < k.buffers.size(); ++i) {
    const Buffer& b = k.buffers[i];
    o << "layout(std430, set = 0, binding = " << i << ") " << (b.writable ? "" : "readonly ") << "buffer B_" << b.name
      << " { " << glsl_type(b.type) << " " << b.name << "[]; };\n";
  }
  if (!k.params.empty()) {
    o << "layout(push_constant) uniform Params {";
    for (const Field& p : k.params) o << " " << glsl_type(p.type) << " " << p.name << ";";
    o << " } P;\n";
  }
  for (const Field& s : k.shared) {
    std::smatch m;
    if (!std::regex_match(s.type, m, std::regex(R"(array<([\w<>]+),\s*(\d+)>)"))) fail(k.name, "shared must be array<T, N>");
    o << "shared " << glsl_type(m[1]) << " " << s.name << "[" << m[2] << "];\n";
  }
  for (const std::string& fn : k.fns) o << glsl_fn(fn);
  o << "void main() " << glsl_body(k.main);
  return o.str();
}

std::string to_wgsl(const Kernel& k) {
  std::ostringstream o;
  o << "// Generated by kernelgen from " << k.name << ".kern. Do not edit.\n";
  for (const Field& a : k.aliases) o << "alias " << a.name << " = " << a.type << ";\n";
  for (size_t i = 0; i < k.buffers.size(); ++i) {
    const Buffer& b = k.buffers[i];
    o << "@group(0) @binding(" << i << ") var<storage, " << (b.writable ? "read_write" : "read") << "> " << b.name
      << ": array<" << b.type << ">;\n";
  }
  if (!k.params.empty()) {
    o << "struct Params {";
    for (const Field& p : k.params) o << " " << p.name << ": " << p.type << ",";
    o << " }\n";
    o << "@group(0) @binding(" << k.buffers.size() << ") var<uniform> P: Params;\n";
  }
  for (const Field& s : k.shared) o << "var<workgroup> " << s.name << ": " << s.type << ";\n";
  for (const std::string& fn : k.fns) o << fn;
  o << "@compute @workgroup_size(" << k.workgroup << ")\n";
  o << "fn main(@builtin(workgroup_id) wg_id: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) " << k.main;
  return o.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) fail(path, "cannot write");
}

std::string read_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A C++ raw string literal that cannot end early.
std::string raw_literal(const std::string& text) { return "R\"kgen(" + text + ")kgen\""; }

void write_table(const std::string& out_path, const std::vector<std::string>& args) {
  std::ostringstream o;
  o << "// Generated by kernelgen: every GPU kernel, from src/backends/kernels. Do not edit.\n";
  o << "#include \"backends/gpu_kernels.h\"\n\nnamespace osprey::backends {\nnamespace {\n";
  std::vector<Kernel> kernels;
  std::vector<std::string> spirv;  // kernels with SPIR-V
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const Kernel k = parse(args[i]);
    kernels.push_back(k);
    // "-": a build with no SPIR-V compiler (the WebAssembly build, WGSL only).
    if (args[i + 1] == "-") continue;
    const std::string spv = read_binary(args[i + 1]);
    if (spv.size() % 4 != 0 || spv.empty()) fail(args[i + 1], "is not SPIR-V");
    o << "const uint32_t spirv_" << k.name << "[] = {";
    for (size_t w = 0; w < spv.size(); w += 4) {
      uint32_t word;
      std::memcpy(&word, spv.data() + w, 4);
      o << (w % 32 == 0 ? "\n  " : " ") << "0x" << std::hex << word << std::dec << "u,";
    }
    o << "};\n";
    spirv.push_back(k.name);
  }
  o << "const KernelSource kKernels[] = {\n";
  for (const Kernel& k : kernels) {
    const bool has_spirv = std::find(spirv.begin(), spirv.end(), k.name) != spirv.end();
    o << "  {\"" << k.name << "\", " << k.buffers.size() << ", " << k.params.size() * 4 << ", " << k.workgroup << ", "
      << (has_spirv ? "spirv_" + k.name + ", sizeof(spirv_" + k.name + ") / 4" : std::string("nullptr, 0")) << ",\n   "
      << raw_literal(to_wgsl(k)) << "},\n";
  }
  o << "};\n}  // namespace\n\n";
  o << "std::span<const KernelSource> gpu_kernels() { return kKernels; }\n\n}  // namespace osprey::backends\n";
  write_file(out_path, o.str());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 3 && args[0] == "glsl") {
    write_file(args[2], to_glsl(parse(args[1])));
  } else if (args.size() >= 3 && args[0] == "wgsl") {
    write_file(args[2], to_wgsl(parse(args[1])));
  } else if (args.size() >= 2 && args[0] == "table") {
    write_table(args[1], std::vector<std::string>(args.begin() + 2, args.end()));
  } else {
    std::cerr << "usage: kernelgen glsl|wgsl FILE.kern OUT | kernelgen table OUT.cpp (FILE.kern FILE.spv|-)...\n";
    return 2;
  }
  return 0;
}
