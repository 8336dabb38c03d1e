# Tracee's helper package for Rego signatures, written for pytracee.
#
# Signatures import it as Tracee's did (`import data.tracee.helpers`) and call
# `helpers.get_tracee_argument("pathname")`, `helpers.is_file_write(flags)` ...
# It is v1 syntax with `import rego.v1`, so it loads unchanged next to pre-1.0
# (v0) signatures and v1 ones, in regorus and in OPA.
#
# Argument values come in two forms, and every helper accepts both:
# raw values (what Tracee writes by default: `"flags": 32769`) and the strings
# of `option:parse-arguments` (`"flags": "O_WRONLY|O_LARGEFILE"`, matched
# case-insensitively: Tracee's old tests use "o_rdwr").
package tracee.helpers

import rego.v1

# The value of the event argument called arg_name; undefined when the event has none
# (also when its "args" is null or missing).
get_tracee_argument(arg_name) := value if {
	arg := input.args[_]
	arg.name == arg_name
	value := arg.value
}

# --- open(2) flags ------------------------------------------------------------

# True when flags open the file for writing (O_WRONLY or O_RDWR).
default is_file_write(_) := false

is_file_write(flags) if _access_mode(flags) in {1, 2}

# True when flags open the file for reading (O_RDONLY or O_RDWR).
default is_file_read(_) := false

is_file_read(flags) if _access_mode(flags) in {0, 2}

# The access mode (flags & O_ACCMODE): 0 O_RDONLY, 1 O_WRONLY, 2 O_RDWR.
_access_mode(flags) := bits.and(flags, 3) if is_number(flags)

_access_mode(flags) := bits.and(to_number(flags), 3) if {
	is_string(flags)
	regex.match(`^[0-9]+$`, flags)
}

_access_mode(flags) := mode if {
	is_string(flags)
	names := {upper(trim_space(name)) | some name in split(flags, "|")}
	modes := {mode | some name in names; mode := _ACCESS_MODES[name]}
	count(modes) == 1
	some mode in modes
}

# A parse-arguments string without an access-mode name (e.g. "O_CLOEXEC") is
# O_RDONLY, whose value is 0, unless it is a plain number (handled above).
_access_mode(flags) := 0 if {
	is_string(flags)
	not regex.match(`^[0-9]+$`, flags)
	names := {upper(trim_space(name)) | some name in split(flags, "|")}
	count({mode | some name in names; mode := _ACCESS_MODES[name]}) == 0
}

_ACCESS_MODES := {"O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2}

# --- ELF --------------------------------------------------------------------------

# True when the captured bytes start with the ELF magic "\x7fELF". Tracee
# writes `bytes` arguments in base64; every base64 text of data starting with
# those four bytes starts with "f0VMR", so no decoding is needed (and binary
# data that is not UTF-8 never has to become a Rego string). A list of byte
# values is accepted too.
default is_elf_file(_) := false

is_elf_file(value) if {
	is_string(value)
	startswith(value, "f0VMR")
}

is_elf_file(value) if {
	is_array(value)
	array.slice(value, 0, 4) == [127, 69, 76, 70]
}
