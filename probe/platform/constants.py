"""Kernel constants memprobe passes to system calls, defined once for every module."""

# Linux personality(2) flag: PROT_READ mappings also get PROT_EXEC.
READ_IMPLIES_EXEC = 0x0400000

# Linux prctl(2) options.
PR_SET_DUMPABLE = 4
PR_SET_MDWE = 65
PR_GET_MDWE = 66
PR_MDWE_REFUSE_EXEC_GAIN = 1

# FreeBSD procctl(2): the W^X status of a process (FreeBSD 13).
P_PID = 0
PROC_WXMAP_STATUS = 22

# FreeBSD's `(char *)1` for shm_open(): an anonymous shared-memory object.
SHM_ANON = 1
