package api

// MaxListScan is maxListScan, for the tests of paging past dropped rows.
const MaxListScan = maxListScan
