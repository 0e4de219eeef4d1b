// Reading llama.cpp's reference outputs in ../shared/reference. A missing file fails
// loudly: the golden tests never skip.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace tandem::testing {

inline std::string SharedPath(const std::string& relative) {
  return std::string(TANDEM_SHARED_DIR) + "/" + relative;
}

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "missing reference file " << path;
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(in);
}

inline std::vector<float> ReadLogits(const std::string& path) {
  std::ifstream in(path);
  std::vector<float> out;
  if (!in) {
    ADD_FAILURE() << "missing reference file " << path;
    return out;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(std::stof(line));
  }
  return out;
}

}  // namespace tandem::testing
