# Turns the web files of a folder into C++: each file's bytes, its URL path and content
# type, behind `DashboardAssets()` (coordinator/dashboard_assets.h). Run at build time as
#   cmake -DINPUT_DIR=dashboard -DOUTPUT=dashboard_files.cc -P cmake/embed_files.cmake
# No network and no JavaScript tool chain: the files are served as they are in the tree.
if(NOT INPUT_DIR OR NOT OUTPUT)
  message(FATAL_ERROR "embed_files.cmake needs -DINPUT_DIR=... and -DOUTPUT=...")
endif()
file(GLOB files RELATIVE "${INPUT_DIR}" "${INPUT_DIR}/*.html" "${INPUT_DIR}/*.css"
     "${INPUT_DIR}/*.js" "${INPUT_DIR}/*.svg" "${INPUT_DIR}/*.png" "${INPUT_DIR}/*.ico")
list(SORT files)

set(data "")
set(table "")
set(index 0)
foreach(name IN LISTS files)
  if(NOT name MATCHES "^[A-Za-z0-9._-]+$")
    message(FATAL_ERROR "embed_files.cmake: '${name}' is not a plain file name")
  endif()
  get_filename_component(ext "${name}" LAST_EXT)
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(ext STREQUAL ".css")
    set(type "text/css; charset=utf-8")
  elseif(ext STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  elseif(ext STREQUAL ".svg")
    set(type "image/svg+xml")
  elseif(ext STREQUAL ".png")
    set(type "image/png")
  else()
    set(type "image/x-icon")
  endif()
  file(READ "${INPUT_DIR}/${name}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # A trailing 0 keeps an empty file's array legal; the size leaves it out.
  string(APPEND data "const unsigned char kFile${index}[] = {${bytes}0};\n")
  string(APPEND table "      {\"/${name}\", \"${type}\",\n"
                      "       {reinterpret_cast<const char*>(kFile${index}), sizeof(kFile${index}) - 1}},\n")
  math(EXPR index "${index} + 1")
endforeach()
if(index EQUAL 0)
  message(FATAL_ERROR "embed_files.cmake: no web files in ${INPUT_DIR}")
endif()

set(text "// Generated at build time by cmake/embed_files.cmake from ${INPUT_DIR}. Do not edit.
#include \"coordinator/dashboard_assets.h\"

namespace tandem {
namespace {

${data}
}  // namespace

std::span<const DashboardAsset> DashboardAssets() {
  static const DashboardAsset kAssets[] = {
${table}  };
  return kAssets;
}

}  // namespace tandem
")
# Rewritten only when it changes, so an untouched page does not rebuild anything.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${text}")
