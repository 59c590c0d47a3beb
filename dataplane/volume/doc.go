// Package volume makes a pod's volumes exist on the node and says what the
// runtime must bind-mount into each container.
//
// Layout under Config.Root (one directory per pod UID, removed by Teardown):
//
//	<Root>/<uid>/volumes/empty-dir/<name>   emptyDir (tmpfs when medium Memory)
//	<Root>/<uid>/volumes/config-map/<name>  configMap files
//	<Root>/<uid>/volumes/secret/<name>      secret files, on tmpfs
//
// and under Config.LocalRoot, kept across pod deletions (persistentVolumeClaim
// volumes, node-local):
//
//	<LocalRoot>/<namespace>/<claimName>
//
// hostPath volumes are used where they are, checked (or created) according to
// their type.
//
// ConfigMap and Secret volumes are written atomically: the files go into a
// fresh hidden directory "..<timestamp>", then the symlink "..data" is
// swapped to it with one rename, and every top-level entry of the volume is
// a symlink through "..data". A reader that resolves "..data" once sees one
// complete set of files, never a mix of two.
//
// Every operation is safe to repeat. The package must not know about Raft or
// the store: ConfigMaps and Secrets come through the Source interface. It
// does not bind-mount into containers; that is the runtime's job, from Mount
// values.
package volume
