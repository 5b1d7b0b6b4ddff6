//go:build unix

package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// errNoUIPage: the app is ready but answers 404 on the page a browser would open.
type errNoUIPage struct{ path string }

func (e errNoUIPage) Error() string {
	return fmt.Sprintf("Jupyter Server answers 404 on %s: it has no web UI (none of JupyterLab, Notebook 7 or NbClassic is installed where it runs, or none is enabled); "+
		"install one in its Python environment, or load one with --setup", e.path)
}

// uiReady checks, once the app answers its ready path, the page a browser would open
// (plan.uiPath): a 404 there is an app with nothing to show, which ends the start; any
// other answer is ready; a failed request is "not yet".
func (pr *prober) uiReady(ctx context.Context) (bool, error) {
	p := pr.p
	if p.uiPath == "" {
		return true, nil
	}
	host := "localhost"
	if p.network == "tcp" {
		host = p.address
	}
	path := p.baseURL + strings.TrimPrefix(p.uiPath, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+path, nil)
	if err != nil {
		return false, nil
	}
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	resp, err := pr.client.Do(req)
	var taken *portTakenError
	if errors.As(err, &taken) {
		return false, taken
	}
	if err != nil {
		return false, nil
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, errNoUIPage{path: path}
	}
	return true, nil
}
