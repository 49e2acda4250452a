package volume

func (t *tunefsVol) disableInlineData() error  { return tunefsRefuse("pending") }
func (t *tunefsVol) enableMetaECC() error      { return tunefsRefuse("pending") }
func (t *tunefsVol) disableMetaECC() error     { return tunefsRefuse("pending") }
func (t *tunefsVol) enableXattr() error        { return tunefsRefuse("pending") }
func (t *tunefsVol) disableXattr() error       { return tunefsRefuse("pending") }
func (t *tunefsVol) enableIndexedDirs() error  { return tunefsRefuse("pending") }
func (t *tunefsVol) disableIndexedDirs() error { return tunefsRefuse("pending") }
func (t *tunefsVol) enableUsrQuota() error     { return tunefsRefuse("pending") }
func (t *tunefsVol) disableUsrQuota() error    { return tunefsRefuse("pending") }
func (t *tunefsVol) enableGrpQuota() error     { return tunefsRefuse("pending") }
func (t *tunefsVol) disableGrpQuota() error    { return tunefsRefuse("pending") }
