package dns

// System call numbers the syscall package does not all have.
const (
	sysRecvmmsg = 243
	sysSendmmsg = 269
)
