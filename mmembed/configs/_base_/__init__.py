# Copyright (c) mmembed authors. All rights reserved.
