package network

// InNetNS runs fn on a thread inside the network namespace at path (""
// = the process's own) and returns its error. Sockets fn opens stay in that
// namespace for their whole life, whichever goroutine then uses them: the
// cluster DNS server answers pods on sockets opened this way.
func InNetNS(path string, fn func() error) error { return inNetNS(path, fn) }
