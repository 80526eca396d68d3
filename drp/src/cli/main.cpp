#include <iostream>

#include "cli/command.h"

int main(int argc, char** argv) {
    return drp::cli::runProgram(argc, argv, std::cout, std::cerr);
}
