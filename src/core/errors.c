/* tf_strerror and tf_err_name, generated from the one TF_ERRNO_MAP list. */
#include "taskfarm_status.h"

const char *tf_strerror(int code)
{
    switch (code) {
    case 0: return "success";
#define TF_ERR_MSG_(name, val, msg)                                            \
    case val: return msg;
        TF_ERRNO_MAP(TF_ERR_MSG_)
#undef TF_ERR_MSG_
    default: return "unknown error";
    }
}

const char *tf_err_name(int code)
{
    switch (code) {
    case 0: return "TF_OK";
#define TF_ERR_NAME_(name, val, msg)                                           \
    case val: return "TF_" #name;
        TF_ERRNO_MAP(TF_ERR_NAME_)
#undef TF_ERR_NAME_
    default: return "TF_UNKNOWN";
    }
}
