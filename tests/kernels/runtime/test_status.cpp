#include <gtest/gtest.h>

#include <string>

extern "C" {
#include "qsim/status.h"
}

TEST(Status, EveryCodeHasItsOwnText) {
    EXPECT_EQ(std::string(qsim_status_string(QSIM_SUCCESS)), "success");
    EXPECT_EQ(std::string(qsim_status_string(QSIM_INVALID_ARGUMENT)), "invalid argument");
    EXPECT_EQ(std::string(qsim_status_string(QSIM_PARSE_ERROR)), "parse error");
    EXPECT_EQ(std::string(qsim_status_string(static_cast<qsim_status>(42))), "unknown status");
}
