#include "qsim/status.h"

const char * qsim_status_string(qsim_status status) {
    switch (status) {
        case QSIM_SUCCESS:          return "success";
        case QSIM_INVALID_ARGUMENT: return "invalid argument";
        case QSIM_OUT_OF_MEMORY:    return "out of memory";
        case QSIM_PARSE_ERROR:      return "parse error";
        case QSIM_IO_ERROR:         return "I/O error";
        case QSIM_NOT_FOUND:        return "not found";
    }
    return "unknown status";
}
