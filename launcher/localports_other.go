//go:build !unix

package launcher

import "os"

// checkOwnDir refuses what is not a directory. On Windows the directory is under
// %LocalAppData%, which only its user (and administrators) may open.
func checkOwnDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return notPrivate(dir, "not a directory")
	}
	return nil
}
