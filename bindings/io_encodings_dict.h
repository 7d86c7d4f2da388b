// io_encodings_dict.h: what the encodings functions of torchqsim._io share
// (io_encodings.cpp: reading, writing, the module; io_encodings_from_dict.cpp: dict -> model).
#ifndef QSIM_IO_ENCODINGS_DICT_H
#define QSIM_IO_ENCODINGS_DICT_H

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "qsim/encodings.h"

namespace qsim_enc_dict {

// torchqsim._io.EncodingsError (owned by the module; set when the module registers it).
extern PyObject * g_error;

// The dict's names of qsim_encoding_layout values and of the sections (by qsim_encoding_role).
inline const char * const LAYOUTS[] = {"per_tensor", "per_channel", "per_block"};
inline const char * const SECTIONS[] = {"activation_encodings", "param_encodings", "encodings"};

using enc_ptr = std::unique_ptr<qsim_encodings, decltype(&qsim_encodings_free)>;

// A model holding what the encodings dict `data` says; raises EncodingsError naming the key.
enc_ptr from_dict(const pybind11::object & data);

// One entry of the dict layout checked as the C reader and writer check it (qsim_encoding_check);
// raises EncodingsError whose message starts with `where`.
void check_encoding(const pybind11::object & entry, const std::string & where);

}  // namespace qsim_enc_dict

#endif  // QSIM_IO_ENCODINGS_DICT_H
