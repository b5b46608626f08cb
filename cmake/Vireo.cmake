# Shared build settings and helpers: warnings, sanitizers, test and fuzz target registration.

add_library(vireo_warnings INTERFACE)
target_compile_options(vireo_warnings INTERFACE
    -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wpointer-arith -Wimplicit-fallthrough
    $<$<BOOL:${VIREO_WERROR}>:-Werror>)

if(VIREO_SANITIZE)
    add_compile_options(-fsanitize=${VIREO_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${VIREO_SANITIZE})
endif()

# libFuzzer only steers by coverage it can see: instrument every library the targets link, not
# just the target files (those add -fsanitize=fuzzer, which also links the fuzzer's main).
if(VIREO_FUZZ)
    add_compile_options(-fsanitize=fuzzer-no-link)
endif()

include(GoogleTest)

# vireo_add_test(NAME name SOURCES ... [LIBS ...] LABELS label... [TIMEOUT s])
# One GoogleTest executable; every TEST becomes a ctest case carrying LABELS. A test that calls
# GTEST_SKIP() << "reason" is reported by ctest as skipped (never as passed).
function(vireo_add_test)
    cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 120)
    endif()
    add_executable(${T_NAME} ${T_SOURCES})
    target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main vireo_warnings)
    target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
    target_compile_definitions(${T_NAME} PRIVATE
        VIREO_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
        VIREO_BINARY_DIR="${PROJECT_BINARY_DIR}")
    gtest_discover_tests(${T_NAME}
        DISCOVERY_TIMEOUT 60
        PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                   SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endfunction()

# vireo_add_fuzzer(NAME name SOURCES ... LIBS ... CORPUS dir)
# With VIREO_FUZZ: a libFuzzer binary (bin/fuzz_<name>). Always: a replay binary that runs the
# seed corpus through the same entry point, registered as a `unit` test, so the targets keep
# building and the corpus keeps passing in every build.
function(vireo_add_fuzzer)
    cmake_parse_arguments(F "" "NAME;CORPUS" "SOURCES;LIBS" ${ARGN})
    if(VIREO_FUZZ)
        if(NOT TARGET fuzzers)
            add_custom_target(fuzzers)
        endif()
        add_executable(fuzz_${F_NAME} ${F_SOURCES})
        add_dependencies(fuzzers fuzz_${F_NAME})
        target_compile_options(fuzz_${F_NAME} PRIVATE -fsanitize=fuzzer)
        target_link_options(fuzz_${F_NAME} PRIVATE -fsanitize=fuzzer)
        target_link_libraries(fuzz_${F_NAME} PRIVATE ${F_LIBS})
        target_include_directories(fuzz_${F_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
    else()
        add_executable(replay_${F_NAME} ${F_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cpp)
        target_link_libraries(replay_${F_NAME} PRIVATE ${F_LIBS} vireo_warnings)
        target_include_directories(replay_${F_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
        add_test(NAME fuzz_corpus.${F_NAME} COMMAND replay_${F_NAME} ${F_CORPUS})
        set_tests_properties(fuzz_corpus.${F_NAME} PROPERTIES LABELS unit TIMEOUT 300)
    endif()
endfunction()
