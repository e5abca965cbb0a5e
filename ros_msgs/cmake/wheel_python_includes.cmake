# Loaded into each interface package's build by .ci/build_msgs.sh (CMAKE_PROJECT_INCLUDE), so the
# packages' own CMakeLists.txt stay as in any ROS workspace.
#
# Why: the PyPI wheels of std_msgs, geometry_msgs, builtin_interfaces ... export the CMake target
# <pkg>::<pkg>__rosidl_generator_py with INTERFACE_INCLUDE_DIRECTORIES naming the wheel builder's
# Python and NumPy include folders (/opt/python/cp311-cp311/...). CMake refuses an imported
# target whose include folder does not exist, at generate time. So once the directory has been
# configured (every find_package done), the Python include folders of those targets are replaced
# by this interpreter's (SAM_PYTHON_INCLUDE_DIRS, passed by the build script). The wheels' files
# are not touched.
cmake_minimum_required(VERSION 3.20)

function(sam_fix_wheel_python_includes)
  if(NOT SAM_PYTHON_INCLUDE_DIRS)
    message(FATAL_ERROR "SAM_PYTHON_INCLUDE_DIRS is not set (pass the Python and NumPy include folders)")
  endif()
  get_property(imported DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(target IN LISTS imported)
    if(NOT target MATCHES "__rosidl_generator_py$")
      continue()
    endif()
    get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT dirs)
      continue()
    endif()
    set(kept "")
    set(replaced FALSE)
    foreach(dir IN LISTS dirs)
      if(EXISTS "${dir}")
        list(APPEND kept "${dir}")
      else()
        set(replaced TRUE)
      endif()
    endforeach()
    if(replaced)
      list(APPEND kept ${SAM_PYTHON_INCLUDE_DIRS})
      list(REMOVE_DUPLICATES kept)
      set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${kept}")
      message(STATUS "${target}: missing wheel-builder include folders replaced by ${SAM_PYTHON_INCLUDE_DIRS}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL sam_fix_wheel_python_includes)
