//! Safe XML pull reading shared by the XML payloads: no DOCTYPE, no entity
//! declarations, bounded depth and sizes, complete documents only.
