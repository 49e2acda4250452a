package lint

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rank of every package under internal/, from ARCHITECTURE.md. A package may
// import only packages of a strictly lower rank. Fractions order the fs/
// chain (metacache <- journal <- alloc <- extent <- {dir, xattr, lockglue}
// <- inode <- volume) and put the edges (R2') between the cores and fs.
var rank = map[string]float64{
	"base":              0,
	"ondisk":            1,
	"cluster/config":    1,
	"cluster/heartbeat": 2,
	"cluster/net":       2,
	"cluster/quorum":    2.05, // decides from heartbeat and link (cluster/net) state
	"dlm":               2.1,  // rides on cluster/net message types
	"ha":                2.1,
	"blockdev":          2.5,
	"transport":         2.5,
	"fs/metacache":      3.0,
	"fs/journal":        3.1,
	"fs/alloc":          3.2,
	"fs/extent":         3.3,
	"fs/dir":            3.4,
	"fs/xattr":          3.4,
	"fs/lockglue":       3.4,
	"fs/inode":          3.5,
	"fs/volume":         3.6,
	"testutil":          3.9, // test support: imported by _test.go files only
	"node":              4,
	"fusefs":            4,
	"fsck":              4,
	"inspect":           4,
	"ha/agent":          4,
	"sim":               4.5, // drives the R2 cores and the edges' simulated halves
	"clustermount":      4.5, // clustered mounts in the agent: node (DLM, heartbeat) + fusefs
	"lint":              9,
}

// pure packages must not touch the outside world or the clock. (cluster/config
// is not among them: it reads and atomically replaces cluster.conf.)
var pure = []string{"base", "ondisk", "cluster/heartbeat", "cluster/net", "cluster/quorum", "dlm", "ha"}

var impureImports = map[string]bool{
	"os": true, "os/exec": true, "os/signal": true, "net": true, "syscall": true, "sync": true,
	"sync/atomic": true, "golang.org/x/sys/unix": true, "io/ioutil": true, "net/http": true,
}

// fs packages must not reach into the cluster stack.
var fsForbidden = []string{"dlm", "node", "cluster/heartbeat", "cluster/net", "cluster/quorum", "transport", "sim"}

type goPackage struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "o2go/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []goPackage
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// internalKey maps "o2go/internal/fs/dir" to its rank-table key "fs/dir";
// sub-packages inherit the key of their nearest listed ancestor.
func internalKey(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "o2go/internal/")
	if !ok {
		return "", false
	}
	for k := rest; k != "." && k != ""; k = filepath.Dir(k) {
		if _, ok := rank[k]; ok {
			return k, true
		}
	}
	return rest, true
}

func TestEveryPackageHasARank(t *testing.T) {
	for _, p := range listPackages(t) {
		if k, ok := internalKey(p.ImportPath); ok {
			if _, ok := rank[k]; !ok {
				t.Errorf("%s has no rank: add it to the table in internal/lint/lint_test.go", p.ImportPath)
			}
		}
	}
}

func TestImportsPointDown(t *testing.T) {
	for _, p := range listPackages(t) {
		from, ok := internalKey(p.ImportPath)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			to, ok := internalKey(imp)
			if !ok || to == from {
				continue
			}
			if to == "testutil" {
				t.Errorf("%s imports %s: testutil is for _test.go files only", p.ImportPath, imp)
				continue
			}
			if rank[to] >= rank[from] {
				t.Errorf("%s (rank %v) imports %s (rank %v): imports must point to lower ranks", p.ImportPath, rank[from], imp, rank[to])
			}
		}
		if strings.HasPrefix(from, "fs/") {
			for _, imp := range append(append([]string{}, p.Imports...), p.TestImports...) {
				to, _ := internalKey(imp)
				for _, f := range fsForbidden {
					if to == f {
						t.Errorf("%s imports %s: fs/* declares interfaces and never imports the cluster stack", p.ImportPath, imp)
					}
				}
			}
		}
	}
}

func TestProtocolCoresArePure(t *testing.T) {
	for _, p := range listPackages(t) {
		key, ok := internalKey(p.ImportPath)
		if !ok || !contains(pure, key) {
			continue
		}
		for _, imp := range p.Imports {
			if impureImports[imp] {
				t.Errorf("%s imports %q: pure cores take time and I/O as inputs (Tick/Step/Observe)", p.ImportPath, imp)
			}
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: goroutine in a pure core", fset.Position(x.Pos()))
				case *ast.SelectorExpr:
					if id, ok := x.X.(*ast.Ident); ok && id.Name == "time" {
						switch x.Sel.Name {
						case "Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick":
							t.Errorf("%s: time.%s in a pure core: time enters as Tick()", fset.Position(x.Pos()), x.Sel.Name)
						}
					}
				}
				return true
			})
		}
	}
}

func TestPureCoresAreRanked(t *testing.T) {
	for _, k := range pure {
		if _, ok := rank[k]; !ok {
			t.Errorf("pure package %s is not in the rank table", k)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
