/*
 * qsim/status.h: the status codes every fallible qsim_ call returns.
 *
 * 0 is success; failures are negative so `if (st < 0)` reads naturally.
 */
#ifndef QSIM_STATUS_H
#define QSIM_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qsim_status {
    QSIM_SUCCESS           =  0,
    QSIM_INVALID_ARGUMENT  = -1, /* a parameter is out of its documented domain */
    QSIM_OUT_OF_MEMORY     = -2,
    QSIM_PARSE_ERROR       = -3, /* malformed JSON, or JSON that breaks the schema */
    QSIM_IO_ERROR          = -4, /* a file could not be read or written */
    QSIM_NOT_FOUND         = -5, /* a lookup found no entry of that name */
} qsim_status;

/* A static, NUL-terminated description of `status` ("unknown status" for values
 * outside the enum). Never NULL; the caller must not free it. */
const char * qsim_status_string(qsim_status status);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_STATUS_H */
