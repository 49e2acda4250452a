package volume

import (
	"fmt"
	"strconv"
	"strings"

	"o2go/internal/ondisk"
)

// tunefs -Q (tunefs.ocfs2's op_query.c): a printf-like format whose
// conversions print the volume's attributes. tunefs.ocfs2 hands the format
// to glibc's printf with its own conversions registered, so:
//
//   - %B block size, %T cluster size, %N node slots, %R root directory
//     block, %Y system directory block, %P first cluster group block, %V
//     label, %U UUID (32 upper-case hex digits), %M compat, %H incompat
//     (followed by the names of the aborted tunefs operation's flags, if
//     any, with no space between) and %O ro-compat feature names ("None"
//     when there are none);
//   - a width pads on the left, or on the right with '-'; other flags, a
//     precision and length modifiers are accepted and ignored; "%%" is a
//     '%';
//   - the escapes \a \b \t \n \v \f \r are turned into their characters
//     first; any other backslash pair is kept as it is;
//   - a standard printf conversion that takes an argument (%d, %s, %x...)
//     is refused; any other conversion character is printed as written,
//     without its length modifiers ("%5lQ" prints %5Q), as glibc does.
//
// Where o2go differs: tunefs.ocfs2 1.8.7 on a glibc with the C23 %B
// (binary integer) conversion refuses every format using %B ("Unknown type
// specifier"); o2go prints the block size, as the manual documents.
// tunefs.ocfs2 prints strerror(errno) for %m; o2go prints %m as it is.

// queryPiece is a literal or a conversion of a parsed query format.
type queryPiece struct {
	lit   string
	conv  byte
	width int
	left  bool
}

// printfArgConversions are glibc's conversions that consume an argument:
// tunefs.ocfs2 refuses formats holding them (parse_printf_format finds an
// argument). B is among them in glibc, and is o2go's block size.
const printfArgConversions = "diouxXeEfFgGaAcspnCSb"

// parseQuery parses a -Q format.
func parseQuery(format string) ([]queryPiece, error) {
	f := queryEscapes(format)
	var out []queryPiece
	var lit strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			lit.WriteByte(f[i])
			continue
		}
		j := i + 1
		p := queryPiece{}
		for j < len(f) && strings.IndexByte("-+ #0'", f[j]) >= 0 {
			if f[j] == '-' {
				p.left = true
			}
			j++
		}
		if j < len(f) && f[j] == '*' {
			return nil, tunefsRefuse("unknown type specifier in the query format %q: '*' widths take an argument", format)
		}
		w := j
		for j < len(f) && f[j] >= '0' && f[j] <= '9' {
			j++
		}
		if j > w {
			p.width, _ = strconv.Atoi(f[w:j])
		}
		if j < len(f) && f[j] == '.' {
			j++
			if j < len(f) && f[j] == '*' {
				return nil, tunefsRefuse("unknown type specifier in the query format %q: '*' precisions take an argument", format)
			}
			for j < len(f) && f[j] >= '0' && f[j] <= '9' {
				j++
			}
		}
		spec := f[i:j] // '%', flags, width, precision
		for j < len(f) && strings.IndexByte("hlLqjzt", f[j]) >= 0 {
			j++
		}
		if j >= len(f) {
			lit.WriteString(spec) // a '%' at the end prints as it is, length modifiers dropped
			break
		}
		c := f[j]
		switch {
		case c == '%':
			lit.WriteByte('%')
		case strings.IndexByte("BTNRYPVUMHO", c) >= 0:
			if lit.Len() > 0 {
				out = append(out, queryPiece{lit: lit.String()})
				lit.Reset()
			}
			p.conv = c
			out = append(out, p)
		case strings.IndexByte(printfArgConversions, c) >= 0:
			return nil, tunefsRefuse("unknown type specifier in the query format %q: %%%c is printf's own (known: %%B %%T %%N %%R %%Y %%P %%V %%U %%M %%H %%O)", format, c)
		default:
			// glibc prints an unknown conversion as written, less its
			// length modifiers.
			lit.WriteString(spec)
			lit.WriteByte(c)
		}
		i = j
	}
	if lit.Len() > 0 {
		out = append(out, queryPiece{lit: lit.String()})
	}
	return out, nil
}

// queryEscapes turns tunefs.ocfs2's backslash escapes into characters.
func queryEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if k := strings.IndexByte("abtnvfr", s[i+1]); k >= 0 {
			b.WriteByte("\a\b\t\n\v\f\r"[k])
		} else {
			b.WriteByte(s[i])
			b.WriteByte(s[i+1])
		}
		i++
	}
	return b.String()
}

// queryValue is what conversion c prints for superblock d.
func queryValue(c byte, d *ondisk.Dinode) string {
	sb := d.Super
	switch c {
	case 'B':
		return strconv.Itoa(sb.BlockSize())
	case 'T':
		return strconv.Itoa(sb.ClusterSize())
	case 'N':
		return strconv.Itoa(int(sb.MaxSlots))
	case 'R':
		return strconv.FormatUint(sb.RootBlkno, 10)
	case 'Y':
		return strconv.FormatUint(sb.SystemDirBlkno, 10)
	case 'P':
		return strconv.FormatUint(sb.FirstClusterGroup, 10)
	case 'V':
		return sb.Label()
	case 'U':
		return sb.UUIDString()
	case 'M':
		return orNone(featureNames(FeatureSet{Compat: sb.Features.Compat}))
	case 'H':
		s := featureNames(FeatureSet{Incompat: sb.Features.Incompat}) + tunefsFlagNames(sb.TunefsFlag)
		return orNone(s)
	case 'O':
		return orNone(featureNames(FeatureSet{RoCompat: sb.Features.RoCompat}))
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

// tunefsFlagNames names s_tunefs_flag's bits as libocfs2 prints them.
func tunefsFlagNames(f uint16) string {
	var names []string
	if f&ondisk.TunefsInProgRemoveSlot != 0 {
		names = append(names, "remove-slot")
	}
	if f&ondisk.TunefsInProgDirTrailer != 0 {
		names = append(names, "dir-trailer")
	}
	if f&^(ondisk.TunefsInProgRemoveSlot|ondisk.TunefsInProgDirTrailer) != 0 {
		names = append(names, "unknown")
	}
	return strings.Join(names, " ")
}

// formatQuery renders a parsed query for superblock d.
func formatQuery(q []queryPiece, d *ondisk.Dinode) string {
	var b strings.Builder
	for _, p := range q {
		if p.conv == 0 {
			b.WriteString(p.lit)
			continue
		}
		v := queryValue(p.conv, d)
		if p.left {
			fmt.Fprintf(&b, "%-*s", p.width, v)
		} else {
			fmt.Fprintf(&b, "%*s", p.width, v)
		}
	}
	return b.String()
}

// query prints the format (query_run).
func (t *tunefsVol) query(q []queryPiece) error {
	// Query output is the point of -Q: -q does not silence it.
	w := t.r.o.Out
	if w == nil {
		return nil
	}
	_, err := fmt.Fprint(w, formatQuery(q, t.Super))
	return err
}
